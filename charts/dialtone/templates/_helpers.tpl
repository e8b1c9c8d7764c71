{{/*
Shared helpers: names, labels, images, and the parts every service's Deployment, Service,
HPA, PDB and ServiceMonitor have in common. A component is passed as
(dict "root" $ "key" "mediaGateway" "name" "media-gateway"): `key` is its values block,
`name` its Kubernetes name suffix and its `dialtone <name>` command.
*/}}

{{- define "dialtone.name" -}}
{{- default .Chart.Name .Values.nameOverride | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dialtone.fullname" -}}
{{- if .Values.fullnameOverride -}}
{{- .Values.fullnameOverride | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- $name := default .Chart.Name .Values.nameOverride -}}
{{- if contains $name .Release.Name -}}
{{- .Release.Name | trunc 63 | trimSuffix "-" -}}
{{- else -}}
{{- printf "%s-%s" .Release.Name $name | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}
{{- end -}}

{{- define "dialtone.chart" -}}
{{- printf "%s-%s" .Chart.Name .Chart.Version | replace "+" "_" | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{/* Labels on every object. */}}
{{- define "dialtone.labels" -}}
helm.sh/chart: {{ include "dialtone.chart" . }}
app.kubernetes.io/name: {{ include "dialtone.name" . }}
app.kubernetes.io/instance: {{ .Release.Name }}
app.kubernetes.io/version: {{ .Chart.AppVersion | quote }}
app.kubernetes.io/managed-by: {{ .Release.Service }}
app.kubernetes.io/part-of: dialtone
{{- with .Values.commonLabels }}
{{ toYaml . }}
{{- end }}
{{- end -}}

{{/* The component's full name: <release>-dialtone-<name>. */}}
{{- define "dialtone.component.fullname" -}}
{{- printf "%s-%s" (include "dialtone.fullname" .root) .name | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dialtone.component.selectorLabels" -}}
app.kubernetes.io/name: {{ include "dialtone.name" .root }}
app.kubernetes.io/instance: {{ .root.Release.Name }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{- define "dialtone.component.labels" -}}
{{ include "dialtone.labels" .root }}
app.kubernetes.io/component: {{ .name }}
{{- end -}}

{{/* <registry>/<repository>/<name>:<tag>, or the component's own repository/tag. */}}
{{- define "dialtone.component.image" -}}
{{- $c := index .root.Values .key -}}
{{- $image := .root.Values.image -}}
{{- $repository := printf "%s/%s" $image.repository .name -}}
{{- if $image.registry -}}
{{- $repository = printf "%s/%s" (trimSuffix "/" $image.registry) $repository -}}
{{- end -}}
{{- /* A service's own repository is a full reference (registry included). */ -}}
{{- $repository = $c.image.repository | default $repository -}}
{{- $tag := $c.image.tag | default $image.tag | default .root.Chart.AppVersion -}}
{{- printf "%s:%s" $repository $tag -}}
{{- end -}}

{{- define "dialtone.serviceAccountName" -}}
{{- if .Values.serviceAccount.create -}}
{{- default (include "dialtone.fullname" .) .Values.serviceAccount.name -}}
{{- else -}}
{{- default "default" .Values.serviceAccount.name -}}
{{- end -}}
{{- end -}}

{{/* The in-cluster gRPC target of a component, e.g. for speech_gateway_address: its headless Service
through gRPC's DNS resolver, one address per ready pod, so clients balance each call (round_robin)
across pods and re-resolve when a server ages a connection out; a ClusterIP would pin every call
of a client to the one pod its connection landed on. */}}
{{- define "dialtone.component.grpcAddress" -}}
{{- $c := index .root.Values .key -}}
{{- printf "dns:///%s-headless:%v" (include "dialtone.component.fullname" .) $c.ports.grpc -}}
{{- end -}}

{{/* Redis: where the URL lives (always a Secret: it may carry a password). */}}
{{- define "dialtone.redis.fullname" -}}
{{- printf "%s-redis" (include "dialtone.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}

{{- define "dialtone.redisUrl.secretName" -}}
{{- if .Values.externalRedis.existingSecret -}}
{{- .Values.externalRedis.existingSecret -}}
{{- else -}}
{{- printf "%s-redis-url" (include "dialtone.fullname" .) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dialtone.redisUrl.secretKey" -}}
{{- if .Values.externalRedis.existingSecret -}}
{{- .Values.externalRedis.existingSecretKey -}}
{{- else -}}
url
{{- end -}}
{{- end -}}

{{- define "dialtone.redisUrl.value" -}}
{{- if .Values.redis.enabled -}}
{{- printf "redis://:%s@%s:6379/0" .password (include "dialtone.redis.fullname" .) -}}
{{- else -}}
{{- .Values.externalRedis.url -}}
{{- end -}}
{{- end -}}

{{- define "dialtone.checkRedis" -}}
{{- if and (not .Values.redis.enabled) (not .Values.externalRedis.url) (not .Values.externalRedis.existingSecret) -}}
{{- fail "dialtone needs Redis on a cluster: set externalRedis.url, externalRedis.existingSecret, or redis.enabled=true" -}}
{{- end -}}
{{- if and .Values.redis.enabled (or .Values.externalRedis.url .Values.externalRedis.existingSecret) -}}
{{- fail "set either redis.enabled or externalRedis, not both" -}}
{{- end -}}
{{- end -}}

{{/* The store keys for Sentinel or Cluster (dialtone.common.redis_client), as a dict to merge into `store`. */}}
{{- define "dialtone.redis.haConfig" -}}
{{- $e := .Values.externalRedis -}}
{{- if and $e.sentinel.addresses $e.cluster -}}
{{- fail "externalRedis: sentinel.addresses or cluster, not both" -}}
{{- end -}}
{{- if and .Values.redis.enabled (or $e.sentinel.addresses $e.cluster) -}}
{{- fail "externalRedis.sentinel/cluster describe an external Redis; the in-chart one (redis.enabled) is a single server" -}}
{{- end -}}
{{- if $e.sentinel.addresses -}}
{{- toYaml (dict "sentinel" (dict "addresses" $e.sentinel.addresses "master_name" $e.sentinel.masterName)) -}}
{{- else if $e.cluster -}}
{{- toYaml (dict "cluster" true) -}}
{{- end -}}
{{- end -}}

{{/* The Sentinels' password into a service's store.sentinel.password (dict "root" $ "envName" ...), when set. */}}
{{- define "dialtone.redis.sentinelPasswordEnv" -}}
{{- $s := .root.Values.externalRedis.sentinel -}}
{{- if and $s.addresses $s.existingSecret }}
- name: {{ .envName }}
  valueFrom:
    secretKeyRef:
      name: {{ $s.existingSecret }}
      key: {{ $s.existingSecretKey }}
{{- end -}}
{{- end -}}

{{/* The env var that carries the Redis URL into a service's config key. */}}
{{- define "dialtone.redisUrl.env" -}}
- name: {{ .envName }}
  valueFrom:
    secretKeyRef:
      name: {{ include "dialtone.redisUrl.secretName" .root }}
      key: {{ include "dialtone.redisUrl.secretKey" .root }}
{{- /* ..._STORE__URL / ..._STORE__REDIS_URL -> ..._STORE__SENTINEL__PASSWORD */}}
{{- include "dialtone.redis.sentinelPasswordEnv" (dict "root" .root "envName" (printf "%s__STORE__SENTINEL__PASSWORD" (splitList "__STORE__" .envName | first))) }}
{{- end -}}

{{/* Where the pods find the tokens (files of mounted Secrets) and the TLS files. */}}
{{- define "dialtone.tokenFile" -}}
/etc/dialtone/tokens/{{ . }}/token
{{- end -}}
{{- define "dialtone.tlsDir" -}}
/etc/dialtone/tls
{{- end -}}

{{/* The Secret holding a surface's token (dict "root" $ "which" "metrics"|"control"): the given one or the chart's. */}}
{{- define "dialtone.token.secretName" -}}
{{- $t := index .root.Values.tokens .which -}}
{{- if $t.existingSecret -}}
{{- $t.existingSecret -}}
{{- else -}}
{{- printf "%s-tokens" (include "dialtone.fullname" .root) | trunc 63 | trimSuffix "-" -}}
{{- end -}}
{{- end -}}

{{- define "dialtone.token.secretKey" -}}
{{- $t := index .root.Values.tokens .which -}}
{{- if $t.existingSecret -}}
{{- $t.existingSecretKey -}}
{{- else -}}
{{- .which -}}
{{- end -}}
{{- end -}}

{{/* A token Secret mounted as <dir>/token (dict "root" $ "which" "metrics"|"control"): the pod volume. */}}
{{- define "dialtone.token.volume" -}}
- name: {{ .which }}-token
  secret:
    secretName: {{ include "dialtone.token.secretName" . }}
    defaultMode: 0440
    items:
      - key: {{ include "dialtone.token.secretKey" . }}
        path: token
{{- end -}}

{{- define "dialtone.token.volumeMount" -}}
- name: {{ .which }}-token
  mountPath: {{ include "dialtone.tokenFile" .which | dir }}
  readOnly: true
{{- end -}}

{{/* A component's TLS Secret (tls.crt, tls.key, ca.crt): the given one or the cert-manager Certificate's. */}}
{{- define "dialtone.component.tlsSecret" -}}
{{- index .root.Values.tls.secrets .key | default (printf "%s-tls" (include "dialtone.component.fullname" .) | trunc 63 | trimSuffix "-") -}}
{{- end -}}

{{/* The keys every service's config has (dialtone.common.config.ServiceConfig). */}}
{{- define "dialtone.component.baseConfig" -}}
{{- $c := index .root.Values .key -}}
grpc:
  host: {{ .root.Values.listenAddress | quote }}
  port: {{ $c.ports.grpc }}
metrics:
  host: {{ .root.Values.listenAddress | quote }}
  port: {{ $c.ports.metrics }}
  enabled: true
  token_file: {{ include "dialtone.tokenFile" "metrics" }}
{{- if .root.Values.tls.enabled }}
tls:
  cert_file: {{ include "dialtone.tlsDir" . }}/tls.crt
  key_file: {{ include "dialtone.tlsDir" . }}/tls.key
  ca_file: {{ include "dialtone.tlsDir" . }}/ca.crt
  health_port: {{ .root.Values.tls.healthPort }}
{{- end }}
log:
  level: {{ .root.Values.log.level }}
  format: {{ .root.Values.log.format }}
shutdown_grace_s: {{ $c.shutdownGraceSeconds }}
{{- end -}}

{{/*
The service's config.yaml: base keys, then the component's own keys (`own`, a YAML string),
then the user's `config` block over both.
*/}}
{{- define "dialtone.component.configYaml" -}}
{{- $c := index .root.Values .key -}}
{{- $config := include "dialtone.component.baseConfig" . | fromYaml -}}
{{- $config = mergeOverwrite $config (.own | default "" | fromYaml) (deepCopy $c.config) -}}
{{- toYaml $config -}}
{{- end -}}

{{/* The ConfigMap holding config.yaml (plus `files`, a YAML string of more keys). */}}
{{- define "dialtone.component.configMap" -}}
apiVersion: v1
kind: ConfigMap
metadata:
  name: {{ include "dialtone.component.fullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "dialtone.component.labels" . | nindent 4 }}
data:
  config.yaml: |
    {{- include "dialtone.component.configYaml" . | nindent 4 }}
{{- with .files }}
  {{- . | nindent 2 }}
{{- end }}
{{- end -}}
