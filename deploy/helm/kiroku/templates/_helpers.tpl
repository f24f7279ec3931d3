{{/*
Names. The release "kiroku" of chart "kiroku" is plainly "kiroku", so the guides'
`kubectl port-forward svc/kiroku 3100` holds for the default install.
*/}}
{{- define "kiroku.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" }}
{{- end }}

{{- define "kiroku.fullname" -}}
{{- if .Values.fullnameOverride }}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- $name := default .Chart.Name .Values.nameOverride }}
{{- if contains $name .Release.Name }}
{{- .Release.Name | trunc 63 | trimSuffix "-" }}
{{- else }}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" }}
{{- end }}
{{- end }}
{{- end }}

{{- define "kiroku.agentName" -}}
{{- printf "%s-agent" (include "kiroku.fullname" .) | trunc 63 | trimSuffix "-" }}
{{- end }}

{{/* Labels on every object: the standard ones plus commonLabels. */}}
{{- define "kiroku.labels" -}}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" }}
app.kubernetes.io/name: {{ include "kiroku.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ include "kiroku.imageTag" . | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: kiroku
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end }}

{{/* Selector labels of one component ("server" or "agent"); never change on upgrade. */}}
{{- define "kiroku.selectorLabels" -}}
app.kubernetes.io/name: {{ include "kiroku.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kiroku.componentLabels" -}}
{{ include "kiroku.labels" .root }}
app.kubernetes.io/component: {{ .component }}
{{- end }}

{{- define "kiroku.imageTag" -}}
{{- .Values.image.tag | default .Chart.AppVersion }}
{{- end }}

{{- define "kiroku.image" -}}
{{- printf "%s:%s" .Values.image.repository (include "kiroku.imageTag" .) }}
{{- end }}

{{/* The server's address inside the cluster, without assuming the cluster domain. */}}
{{- define "kiroku.serverUrl" -}}
{{- printf "http://%s.%s.svc:%d" (include "kiroku.fullname" .) .Release.Namespace (int .Values.service.port) }}
{{- end }}

{{/* The server's YAML config: the chart's settings, then server.extraConfig over them. */}}
{{- define "kiroku.serverConfig" -}}
{{- $config := dict
  "listen" "0.0.0.0:3100"
  "data_dir" "/var/lib/kiroku"
  "retention" .Values.server.retention
  "retention_max_disk" .Values.server.retentionMaxDisk
  "auth" .Values.auth
}}
{{- with .Values.storage }}
{{- if .url }}
{{- $_ := set $config "storage_url" .url }}
{{- $_ := set $config "cache_max_bytes" (toString .cacheMaxBytes) }}
{{- with .endpoint }}{{ $_ := set $config "storage_endpoint" . }}{{ end }}
{{- with .region }}{{ $_ := set $config "storage_region" . }}{{ end }}
{{- if ne .addressing "path" }}{{ $_ := set $config "storage_addressing" .addressing }}{{ end }}
{{- if .allowHttp }}{{ $_ := set $config "storage_allow_http" true }}{{ end }}
{{- end }}
{{- end }}
{{- toYaml (mergeOverwrite $config (deepCopy .Values.server.extraConfig)) }}
{{- end }}

{{/* The same pod-level and container-level hardening for every kiroku container. */}}
{{- define "kiroku.restrictedContainer" -}}
allowPrivilegeEscalation: false
readOnlyRootFilesystem: true
capabilities:
  drop: ["ALL"]
{{- end }}

{{- define "kiroku.checkValues" -}}
{{- if and (eq .Values.auth "header") (not .Values.tenant) }}
{{- fail "auth=header needs tenant: the tenant (X-Scope-OrgID) the agent pushes as and Grafana queries as, e.g. --set tenant=team-a" }}
{{- end }}
{{- end }}
