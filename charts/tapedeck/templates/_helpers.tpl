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
- apiGroups: ["", events.k8s.io]
  resources: [events]
  verbs: [create]
{{- end }}
