-- Argo CD health check for tapedeck Recordings (tapedeck.dev/Recording).
-- Install it under resource.customizations.health.tapedeck.dev_Recording in argocd-cm
-- (docs/gitops.md). Argo CD 2.x and later; `obj` is the live Recording.
local hs = {}
local status = obj.status or {}
local phase = status.phase
if phase == "UPLOADED" then
  hs.status = "Healthy"
  hs.message = "every output is uploaded"
elseif phase == "ERRORED" then
  hs.status = "Degraded"
  hs.message = status.error or "the recording failed"
elseif phase == "PAUSED" then
  hs.status = "Suspended"
  hs.message = "the recording is paused"
else
  hs.status = "Progressing"
  hs.message = phase and ("the recording is " .. phase) or "waiting for the operator"
  -- A Degraded condition (uploads behind, a missing Secret) is not a failure yet: the
  -- operator retries it, so it stays Progressing with the condition's message.
  for _, condition in ipairs(status.conditions or {}) do
    if condition.type == "Degraded" and condition.status == "True" then
      hs.message = condition.message
    end
  end
end
return hs
