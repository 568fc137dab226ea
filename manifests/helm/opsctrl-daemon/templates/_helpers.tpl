{{/* The objects' name: the release name, or <release>-opsctrl-daemon when the
release name does not already say opsctrl-daemon. */}}
{{- define "opsctrl.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{/* What the kustomize install selects on, plus the release: two releases in
one namespace never select each other's pods. */}}
{{- define "opsctrl.selectorLabels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "opsctrl.labels" -}}
{{ include "opsctrl.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" }}
{{- end -}}

{{- define "opsctrl.secretName" -}}
{{- .Values.secrets.existingSecret | default (printf "%s-credentials" (include "opsctrl.fullname" .)) -}}
{{- end -}}

{{- define "opsctrl.leaseName" -}}
{{- .Values.leaderElection.leaseName | default (include "opsctrl.fullname" .) -}}
{{- end -}}

{{/* "true" when leader election is on: asked for, or needed by replicaCount > 1. */}}
{{- define "opsctrl.leaderElection" -}}
{{- $le := .Values.leaderElection.enabled -}}
{{- if and (gt (int .Values.replicaCount) 1) (eq (toString $le) "false") -}}
{{- fail (printf "replicaCount=%d needs leader election (every replica would notify): leave leaderElection.enabled unset (null) or set it to true" (int .Values.replicaCount)) -}}
{{- end -}}
{{- if or (eq (toString $le) "true") (gt (int .Values.replicaCount) 1) -}}true{{- end -}}
{{- end -}}

{{/* The watched namespaces as a list (empty for "*"). */}}
{{- define "opsctrl.watchedNamespaces" -}}
{{- $out := list -}}
{{- if ne (trim .Values.monitoring.watchNamespaces) "*" -}}
{{- range splitList "," .Values.monitoring.watchNamespaces -}}
{{- if trim . -}}{{- $out = append $out (trim .) -}}{{- end -}}
{{- end -}}
{{- end -}}
{{- toJson $out -}}
{{- end -}}

{{/* Cross-value rules the schema cannot say. */}}
{{- define "opsctrl.validate" -}}
{{- if and .Values.rbac.namespaced (eq (len (include "opsctrl.watchedNamespaces" . | fromJsonArray)) 0) -}}
{{- fail "rbac.namespaced=true needs monitoring.watchNamespaces to list the namespaces (e.g. \"shop,payments\"), not \"*\": one Role is created in each" -}}
{{- end -}}
{{- if and .Values.clusterRegistration.userEmail (not .Values.clusterRegistration.backendUrl) -}}
{{- fail "clusterRegistration.userEmail needs clusterRegistration.backendUrl (the OpsCtrl backend the cluster registers with)" -}}
{{- end -}}
{{- if and .Values.alerts.slackChannel (not (or .Values.secrets.slackBotToken .Values.secrets.existingSecret)) -}}
{{- fail "alerts.slackChannel is the Slack bot's channel: set secrets.slackBotToken (or secrets.existingSecret with SLACK_BOT_TOKEN)" -}}
{{- end -}}
{{- end -}}

{{/* The rules on watched pods; logs (on by default) and k8sEvents add one each. */}}
{{- define "opsctrl.podRules" -}}
- apiGroups: [""]
  resources: {{ if .namespaced }}["pods", "events"]{{ else }}["pods", "events", "namespaces", "nodes"]{{ end }}
  verbs: ["get", "list", "watch"]
{{- if .Values.logs.enabled }}
- apiGroups: [""]
  resources: ["pods/log"]
  verbs: ["get"]
{{- end }}
{{- if .Values.k8sEvents.enabled }}
- apiGroups: [""]
  resources: ["events"]
  verbs: ["create"]
{{- end }}
{{- end -}}
