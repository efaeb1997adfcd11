package proxy

// ApiVersions (key 18) before authentication, versions 0 up to what the
// upstream and kmsg both support (kmsg v1.15: 5). After authentication the
// request is relayed and the upstream's answer clamped (relay.go).

import (
	"context"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
	"go.uber.org/zap"

	"github.com/scram-proxy/scram-proxy/internal/protocol"
)

func (s *session) handleApiVersions(ctx context.Context, h protocol.RequestHeader, body []byte) reply {
	table, err := s.srv.versions.get(ctx)
	if err != nil {
		s.log.Warn("upstream api versions unavailable", zap.Error(err))
		return closeNow(reasonUpstreamDial)
	}
	lo, hi, _ := table.rangeOf(protocol.KeyApiVersions)
	if h.Version < lo || h.Version > hi {
		// KIP-511: do not parse the body; answer with a v0 body naming our
		// range so the client can retry on this connection (franz-go does).
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.ErrorCode = kerr.UnsupportedVersion.Code
		k := kmsg.NewApiVersionsResponseApiKey()
		k.ApiKey, k.MinVersion, k.MaxVersion = protocol.KeyApiVersions, lo, hi
		resp.ApiKeys = []kmsg.ApiVersionsResponseApiKey{k}
		v0 := h
		v0.Version = 0
		return answer(protocol.AppendResponse(nil, v0, resp))
	}
	req := kmsg.NewPtrApiVersionsRequest()
	req.SetVersion(h.Version)
	if err := req.ReadFrom(body); err != nil {
		s.log.Info("malformed ApiVersions request", zap.Error(err))
		return closeNow(reasonProtocol)
	}
	if h.Version >= 3 && !(validSoftwareField(req.ClientSoftwareName) && validSoftwareField(req.ClientSoftwareVersion)) {
		resp := kmsg.NewPtrApiVersionsResponse()
		resp.ErrorCode = kerr.InvalidRequest.Code
		return answer(protocol.AppendResponse(nil, h, resp))
	}
	resp := *table.resp // copy: SetVersion must not touch the shared table
	s.state = stateAwaitHandshake
	return answer(protocol.AppendResponse(nil, h, &resp))
}

// validSoftwareField implements ApiVersionsRequest's pattern
// [a-zA-Z0-9](?:[a-zA-Z0-9\-.]*[a-zA-Z0-9])? without a regexp.
func validSoftwareField(v string) bool {
	if v == "" {
		return false
	}
	alnum := func(c byte) bool { return c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' }
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !alnum(c) && ((c != '-' && c != '.') || i == 0 || i == len(v)-1) {
			return false
		}
	}
	return true
}
