{{- define "tapedeck.fullname" -}}
{{- if contains "tapedeck" .Release.Name }}{{ .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}{{ printf "%s-tapedeck" .Release.Name | trunc 63 | trimSuffix "-" }}{{ end }}
{{- end }}

{{- define "tapedeck.selectorLabels" -}}
app.kubernetes.io/name: tapedeck-operator
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tapedeck.labels" -}}
{{ include "tapedeck.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}

{{- define "tapedeck.image" -}}
{{ .Values.operator.image.repository }}:{{ .Values.operator.image.tag | default .Chart.AppVersion }}
{{- end }}

{{/* The operator's rules (tapedeck_operator.rbac.operator_rules; a test keeps them equal). */}}
{{- define "tapedeck.rules" -}}
- apiGroups: [tapedeck.dev]
  resources: [recordings]
  verbs: [get, list, watch, patch]
- apiGroups: [tapedeck.dev]
  resources: [recordings/status]
  verbs: [get, patch]
- apiGroups: [tapedeck.dev]
  resources: [recordings/finalizers]
  verbs: [update]
- apiGroups: [""]
  resources: [pods]
  verbs: [get, list, watch, create, delete]
- apiGroups: [""]
  resources: [serviceaccounts]
  verbs: [create, get]
- apiGroups: [rbac.authorization.k8s.io]
  resources: [roles, rolebindings]
  verbs: [create, get]
- apiGroups: [""]
  resources: [secrets]
  verbs: [get]
- apiGroups: [""]
  resources: [configmaps]
  verbs: [get, create]
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create]
{{- end }}

{{/* The demo (demo.enabled): names, labels, and what its pods share. */}}
{{- define "tapedeck.demoName" -}}
{{ include "tapedeck.fullname" . | trunc 50 | trimSuffix "-" }}-demo
{{- end }}

{{- define "tapedeck.demoSelector" -}}
{{- $ := index . 0 -}}
app.kubernetes.io/name: tapedeck-demo
app.kubernetes.io/instance: {{ $.Release.Name }}
app.kubernetes.io/component: {{ index . 1 }}
{{- end }}

{{- define "tapedeck.demoLabels" -}}
{{- $ := index . 0 -}}
{{ include "tapedeck.demoSelector" . }}
app.kubernetes.io/version: {{ $.Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ $.Release.Service }}
helm.sh/chart: {{ printf "%s-%s" $.Chart.Name $.Chart.Version }}
{{- end }}

{{- define "tapedeck.demoPod" -}}
automountServiceAccountToken: false
securityContext:
  runAsNonRoot: true
  runAsUser: 65532
  runAsGroup: 65532
  seccompProfile: {type: RuntimeDefault}
{{- end }}

{{- define "tapedeck.demoContainer" -}}
image: {{ .Values.demo.image }}
imagePullPolicy: {{ .Values.demo.imagePullPolicy }}
resources:
  requests: {cpu: 100m, memory: 128Mi}
  limits: {cpu: "1", memory: 1Gi}
securityContext:
  allowPrivilegeEscalation: false
  readOnlyRootFilesystem: true
  capabilities: {drop: [ALL]}
{{- end }}

{{- define "tapedeck.demoCredentials" -}}
- name: TAPEDECK_STORAGE_ACCESS_KEY_ID
  valueFrom: {secretKeyRef: {name: {{ include "tapedeck.demoName" . }}-s3, key: accessKeyId}}
- name: TAPEDECK_STORAGE_SECRET_ACCESS_KEY
  valueFrom: {secretKeyRef: {name: {{ include "tapedeck.demoName" . }}-s3, key: secretAccessKey}}
{{- end }}

{{/* The default storage with demo.enabled: the demo's S3 server, for Recordings in the
release's namespace (where its credentials Secret is). */}}
{{- define "tapedeck.demoStorage" -}}
type: s3
region: us-east-1
endpoint: http://{{ include "tapedeck.demoName" . }}-s3.{{ .Release.Namespace }}.svc:8333
bucket: recordings
secretRef: {name: {{ include "tapedeck.demoName" . }}-s3}
{{- end }}

{{/* tapedeck-api (api.enabled). */}}
{{- define "tapedeck.apiSelector" -}}
app.kubernetes.io/name: tapedeck-api
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end }}

{{- define "tapedeck.apiLabels" -}}
{{ include "tapedeck.apiSelector" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end }}
