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

{{/*
Kafka settings of worker, sender and API pods: topic replication (kafka.replicationFactor,
kafka.minInsyncReplicas; docs/production-kafka.md) and TLS / SASL (values kafka.securityProtocol,
kafka.sasl, kafka.tls; docs/security.md): STREAMPROC_KAFKA_* variables, naming files mounted
from Secrets, so no password is ever in a manifest. Nothing at all for PLAINTEXT and defaults.
*/}}
{{- define "streamproc.kafkaSecurityEnv" -}}
{{- $k := .Values.kafka -}}
{{- $protocol := $k.securityProtocol | default "PLAINTEXT" -}}
{{- if not (has $protocol (list "PLAINTEXT" "SSL" "SASL_PLAINTEXT" "SASL_SSL")) -}}
{{- fail (printf "kafka.securityProtocol must be PLAINTEXT, SSL, SASL_PLAINTEXT or SASL_SSL (got %q)" $protocol) -}}
{{- end -}}
{{- if $k.replicationFactor }}
- name: STREAMPROC_KAFKA_REPLICATION_FACTOR
  value: {{ $k.replicationFactor | quote }}
{{- end }}
{{- if $k.minInsyncReplicas }}
- name: STREAMPROC_KAFKA_MIN_INSYNC_REPLICAS
  value: {{ $k.minInsyncReplicas | quote }}
{{- end }}
{{- if ne $protocol "PLAINTEXT" }}
- name: STREAMPROC_KAFKA_SECURITY_PROTOCOL
  value: {{ $protocol | quote }}
{{- end }}
{{- if hasPrefix "SASL_" $protocol }}
- name: STREAMPROC_KAFKA_SASL_MECHANISM
  value: {{ $k.sasl.mechanism | quote }}
- name: STREAMPROC_KAFKA_SASL_USERNAME
  value: {{ required "kafka.sasl.username is required with SASL" $k.sasl.username | quote }}
- name: STREAMPROC_KAFKA_SASL_PASSWORD_FILE
  value: /var/run/streamproc/kafka-sasl/password
{{- end }}
{{- if has $protocol (list "SSL" "SASL_SSL") }}
{{- if $k.tls.caSecret }}
- name: STREAMPROC_KAFKA_SSL_CA_FILE
  value: /var/run/streamproc/kafka-ca/ca.crt
{{- end }}
{{- if $k.tls.clientSecret }}
- name: STREAMPROC_KAFKA_SSL_CERT_FILE
  value: /var/run/streamproc/kafka-client/tls.crt
- name: STREAMPROC_KAFKA_SSL_KEY_FILE
  value: /var/run/streamproc/kafka-client/tls.key
{{- end }}
- name: STREAMPROC_KAFKA_SSL_CHECK_HOSTNAME
  value: {{ $k.tls.checkHostname | quote }}
{{- end }}
{{- end -}}

{{- define "streamproc.kafkaSecurityMounts" -}}
{{- $k := .Values.kafka -}}
{{- $protocol := $k.securityProtocol | default "PLAINTEXT" -}}
{{- if hasPrefix "SASL_" $protocol }}
- {name: kafka-sasl, mountPath: /var/run/streamproc/kafka-sasl, readOnly: true}
{{- end }}
{{- if has $protocol (list "SSL" "SASL_SSL") }}
{{- if $k.tls.caSecret }}
- {name: kafka-ca, mountPath: /var/run/streamproc/kafka-ca, readOnly: true}
{{- end }}
{{- if $k.tls.clientSecret }}
- {name: kafka-client, mountPath: /var/run/streamproc/kafka-client, readOnly: true}
{{- end }}
{{- end }}
{{- end -}}

{{- define "streamproc.kafkaSecurityVolumes" -}}
{{- $k := .Values.kafka -}}
{{- $protocol := $k.securityProtocol | default "PLAINTEXT" -}}
{{- if hasPrefix "SASL_" $protocol }}
- name: kafka-sasl
  secret:
    secretName: {{ required "kafka.sasl.passwordSecret (a Secret with the SASL password) is required with SASL" $k.sasl.passwordSecret | quote }}
    items: [{key: {{ $k.sasl.passwordKey | quote }}, path: password}]
{{- end }}
{{- if has $protocol (list "SSL" "SASL_SSL") }}
{{- if $k.tls.caSecret }}
- name: kafka-ca
  secret:
    secretName: {{ $k.tls.caSecret | quote }}
    items: [{key: {{ $k.tls.caKey | quote }}, path: ca.crt}]
{{- end }}
{{- if $k.tls.clientSecret }}
- name: kafka-client
  secret:
    secretName: {{ $k.tls.clientSecret | quote }}
    items: [{key: tls.crt, path: tls.crt}, {key: tls.key, path: tls.key}]
{{- end }}
{{- end }}
{{- end -}}
