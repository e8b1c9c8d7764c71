{{/*
NetworkPolicy parts. Each service's policy allows only the paths of the architecture:
media -> speech -> runtime -> integration over gRPC, runtime/integration -> Redis,
integration -> backends, SIP/RTP in and out of the media gateway, DNS, and metrics scrapes.
*/}}

{{/* A peer selecting one component's pods (dict "root" $ "name" "speech-gateway"). */}}
{{- define "dialtone.netpol.peer" -}}
- podSelector:
    matchLabels:
      {{- include "dialtone.component.selectorLabels" . | nindent 6 }}
{{- end -}}

{{- define "dialtone.netpol.metricsIngress" -}}
{{- $c := index .root.Values .key -}}
- ports:
    - port: {{ $c.ports.metrics }}
      protocol: TCP
  {{- with .root.Values.networkPolicy.metricsFrom }}
  from:
    {{- toYaml . | nindent 4 }}
  {{- end }}
{{- end -}}

{{- define "dialtone.netpol.dnsEgress" -}}
- ports:
    - port: 53
      protocol: UDP
    - port: 53
      protocol: TCP
{{- end -}}

{{/* Egress to the state store: the in-chart Redis pods, or externalRedis's rules. */}}
{{- define "dialtone.netpol.redisEgress" -}}
{{- if .Values.redis.enabled -}}
- to:
    {{- include "dialtone.netpol.peer" (dict "root" . "name" "redis") | nindent 4 }}
  ports:
    - port: 6379
      protocol: TCP
{{- else -}}
{{- toYaml .Values.networkPolicy.externalRedisEgress -}}
{{- end -}}
{{- end -}}

{{- define "dialtone.netpol.grpcEgressTo" -}}
{{- $c := index .root.Values .key -}}
- to:
    {{- include "dialtone.netpol.peer" . | nindent 4 }}
  ports:
    - port: {{ $c.ports.grpc }}
      protocol: TCP
{{- end -}}

{{- define "dialtone.netpol.grpcIngressFrom" -}}
{{- $c := index .root.Values .key -}}
- from:
    {{- include "dialtone.netpol.peer" (dict "root" .root "name" .from) | nindent 4 }}
  ports:
    - port: {{ $c.ports.grpc }}
      protocol: TCP
{{- end -}}

{{- define "dialtone.netpol.header" -}}
apiVersion: networking.k8s.io/v1
kind: NetworkPolicy
metadata:
  name: {{ include "dialtone.component.fullname" . }}
  namespace: {{ .root.Release.Namespace }}
  labels:
    {{- include "dialtone.component.labels" . | nindent 4 }}
spec:
  podSelector:
    matchLabels:
      {{- include "dialtone.component.selectorLabels" . | nindent 6 }}
  policyTypes: [Ingress, Egress]
{{- end -}}
