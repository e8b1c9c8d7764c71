{{/* The public address for SIP/SDP, when the chart knows it (else the pod's env sets it). */}}
{{- define "dialtone.mediaGateway.advertisedAddress" -}}
{{- $c := .Values.mediaGateway -}}
{{- if $c.sip.advertisedAddress -}}
{{- $c.sip.advertisedAddress -}}
{{- else if and $c.publicService.enabled $c.publicService.loadBalancerIP (not $c.hostNetwork) -}}
{{- $c.publicService.loadBalancerIP -}}
{{- end -}}
{{- end -}}

{{- define "dialtone.mediaGateway.checks" -}}
{{- $c := .Values.mediaGateway -}}
{{- if gt (int $c.rtp.portMin) (int $c.rtp.portMax) -}}
{{- fail (printf "mediaGateway.rtp.portMin (%v) is above portMax (%v)" $c.rtp.portMin $c.rtp.portMax) -}}
{{- end -}}
{{- if and $c.hostNetwork $c.publicService.enabled -}}
{{- fail "mediaGateway: use hostNetwork or publicService, not both" -}}
{{- end -}}
{{- if and $c.publicService.enabled $c.publicService.exposeRtp (eq $c.publicService.type "NodePort") -}}
{{- if or (lt (int $c.rtp.portMin) 30000) (gt (int $c.rtp.portMax) 32767) -}}
{{- fail (printf "mediaGateway.publicService.type=NodePort exposes each RTP port as the same node port, so rtp.portMin..portMax (%v-%v) must lie within 30000-32767" $c.rtp.portMin $c.rtp.portMax) -}}
{{- end -}}
{{- end -}}
{{- if and $c.publicService.enabled $c.publicService.exposeRtp (gt (sub (int $c.rtp.portMax) (int $c.rtp.portMin)) 999) -}}
{{- fail (printf "mediaGateway.publicService lists every RTP port in the Service; %v-%v is more than 1000 ports: narrow the range or use hostNetwork" $c.rtp.portMin $c.rtp.portMax) -}}
{{- end -}}
{{- end -}}
