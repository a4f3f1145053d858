{{/* The release's name for every object: <release>-copl-serve, at most 63 characters. */}}
{{- define "copl.fullname" -}}
{{- if contains .Chart.Name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name .Chart.Name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "copl.labels" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
helm.sh/chart: {{ printf "%s-%s" .Chart.Name .Chart.Version }}
{{- end -}}

{{- define "copl.selector" -}}
app.kubernetes.io/name: {{ .Chart.Name }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/component: server
{{- end -}}

{{- define "copl.image" -}}
{{- $tag := .Values.image.tag | default (printf "%s%s" .Chart.AppVersion (ternary "-cuda" "" .Values.gpu.enabled)) -}}
{{- printf "%s:%s" .Values.image.repository $tag -}}
{{- end -}}

{{/* The chart's Redis: its name and the Secret holding its password. */}}
{{- define "copl.redis" -}}{{ include "copl.fullname" . }}-redis{{- end -}}
{{- define "copl.redisSecret" -}}
{{- .Values.redis.existingSecret | default (printf "%s-redis" (include "copl.fullname" .)) -}}
{{- end -}}

{{/* Refusals of value combinations the schema cannot express. */}}
{{- define "copl.checks" -}}
{{- if and (eq .Values.store.backend "embedded") (gt (int .Values.replicaCount) 1) -}}
{{- fail "store.backend \"embedded\" keeps users on one replica's volume: set replicaCount 1 (and autoscaling.enabled false) or use store.backend \"redis\"" -}}
{{- end -}}
{{- if and (eq .Values.store.backend "embedded") .Values.autoscaling.enabled -}}
{{- fail "store.backend \"embedded\" cannot scale out: set autoscaling.enabled false" -}}
{{- end -}}
{{- if and (eq .Values.store.backend "embedded") (not .Values.store.embeddedClaim) -}}
{{- fail "store.backend \"embedded\" needs store.embeddedClaim (a PersistentVolumeClaim): onboarded users would be lost with the pod" -}}
{{- end -}}
{{- if and (eq .Values.store.backend "redis") (not .Values.store.redisUrl) (not .Values.redis.enabled) -}}
{{- fail "store.backend \"redis\" needs store.redisUrl or redis.enabled" -}}
{{- end -}}
{{- if and (eq .Values.models.source "claim") (not .Values.models.existingClaim) -}}
{{- fail "models.source \"claim\" needs models.existingClaim" -}}
{{- end -}}
{{- if and .Values.tls.secretName (gt (int .Values.ports.http) 0) -}}
{{- fail "ports.http serves plaintext HTTP/JSON: not together with tls.secretName (terminate TLS in front of it)" -}}
{{- end -}}
{{- end -}}
