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
{{- if lt (int $c.rtp.portHigh) (add (int $c.rtp.portLow) 2) -}}
{{- fail (printf "mediaGateway.rtp: [portLow, portHigh) = [%v, %v) holds no RTP/RTCP port pair" $c.rtp.portLow $c.rtp.portHigh) -}}
{{- end -}}
{{- if and $c.webrtc.enabled (not $c.webrtc.accessKeySecret) -}}
{{- fail "mediaGateway.webrtc.enabled needs webrtc.accessKeySecret: a Secret with the softphone's access key" -}}
{{- end -}}
{{- if and $c.hostNetwork $c.publicService.enabled -}}
{{- fail "mediaGateway: use hostNetwork or publicService, not both" -}}
{{- end -}}
{{- if and $c.publicService.enabled $c.publicService.exposeRtp (eq $c.publicService.type "NodePort") -}}
{{- if or (lt (int $c.rtp.portLow) 30000) (gt (int $c.rtp.portHigh) 32768) -}}
{{- fail (printf "mediaGateway.publicService.type=NodePort exposes each RTP port as the same node port, so [rtp.portLow, rtp.portHigh) = [%v, %v) must lie within 30000-32767" $c.rtp.portLow $c.rtp.portHigh) -}}
{{- end -}}
{{- end -}}
{{- if and $c.publicService.enabled $c.publicService.exposeRtp (gt (sub (int $c.rtp.portHigh) (int $c.rtp.portLow)) 1000) -}}
{{- fail (printf "mediaGateway.publicService lists every RTP port in the Service; [%v, %v) is more than 1000 ports: narrow the range or use hostNetwork" $c.rtp.portLow $c.rtp.portHigh) -}}
{{- end -}}
{{- end -}}
