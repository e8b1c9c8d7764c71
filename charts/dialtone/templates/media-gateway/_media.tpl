{{/* The public address for SIP/SDP, when the chart knows it (else the pod's env sets it). */}}
{{- define "dialtone.mediaGateway.advertisedAddress" -}}
{{- $c := .Values.mediaGateway -}}
{{- if $c.sip.advertisedAddress -}}
{{- $c.sip.advertisedAddress -}}
{{- else if and $c.publicService.enabled $c.publicService.loadBalancerIP (not $c.hostNetwork) -}}
{{- $c.publicService.loadBalancerIP -}}
{{- end -}}
{{- end -}}

{{/* The SIP port for Contact and Via, when it is not the port the gateway binds. */}}
{{- define "dialtone.mediaGateway.advertisedPort" -}}
{{- $c := .Values.mediaGateway -}}
{{- if $c.sip.advertisedPort -}}
{{- $c.sip.advertisedPort -}}
{{- else if and $c.publicService.enabled (eq $c.publicService.type "NodePort") $c.publicService.sipNodePort -}}
{{- $c.publicService.sipNodePort -}}
{{- end -}}
{{- end -}}

{{/* The most media gateways the release can run. */}}
{{- define "dialtone.mediaGateway.maxReplicas" -}}
{{- $c := .Values.mediaGateway -}}
{{- ternary $c.autoscaling.maxReplicas $c.replicas $c.autoscaling.enabled -}}
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
{{- if and $c.publicService.enabled (gt (int (include "dialtone.mediaGateway.maxReplicas" .)) 1) -}}
{{- fail (printf "mediaGateway.publicService (%s) with up to %v replicas: the Service sends every RTP port to every pod, so RTP reaches gateways that did not allocate the port; run one (autoscaling.enabled=false, replicas=1) or use hostNetwork on a media node pool" $c.publicService.type (include "dialtone.mediaGateway.maxReplicas" .)) -}}
{{- end -}}
{{- if and $c.publicService.enabled (eq $c.publicService.type "NodePort") (not (include "dialtone.mediaGateway.advertisedPort" .)) -}}
{{- fail "mediaGateway.publicService.type=NodePort needs publicService.sipNodePort (or sip.advertisedPort): peers must be told the node port in Contact/Via, not the pod's 5060" -}}
{{- end -}}
{{- if and $c.hostNetwork .Values.networkPolicy.enabled (not .Values.networkPolicy.mediaNodeCidrs) -}}
{{- fail "mediaGateway.hostNetwork with networkPolicy.enabled needs networkPolicy.mediaNodeCidrs: host-networked gateways send from their nodes' addresses, which no podSelector matches, so the speech gateway's policy would refuse them" -}}
{{- end -}}
{{- end -}}
