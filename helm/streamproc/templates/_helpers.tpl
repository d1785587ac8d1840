{{/*
Base name of every object: <release>-streamproc. Truncated to 45 characters so that
"<base>-worker" stays within 52: the StatefulSet controller labels each pod with
controller-revision-hash=<statefulset name>-<hash of up to 10 chars>, and label values
are limited to 63 characters.
*/}}
{{- define "streamproc.name" -}}
{{- printf "%s-streamproc" .Release.Name | trunc 45 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels that select pods; immutable in a StatefulSet/Deployment once installed. */}}
{{- define "streamproc.selectorLabels" -}}
app.kubernetes.io/name: streamproc
app.kubernetes.io/instance: {{ .Release.Name }}
{{- end -}}

{{- define "streamproc.labels" -}}
{{ include "streamproc.selectorLabels" . }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
{{- end -}}

{{/* Kafka bootstrap servers; the chart refuses to render without them. */}}
{{- define "streamproc.kafkaBootstrap" -}}
{{- required "kafka.bootstrap (host:port,...) is required" .Values.kafka.bootstrap | quote -}}
{{- end -}}
