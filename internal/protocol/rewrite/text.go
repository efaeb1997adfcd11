package rewrite

// Upstream detail outside endpoint fields: free text a broker writes into a
// response (error messages, status details), the client hosts it reports
// (which, behind the proxy, are the proxy's own upstream-side address, in
// sidecar mode the broker host's), and broker configuration values
// (DescribeConfigs). docs/upstream-detail.md lists every place handled.

import (
	"net"
	"reflect"
	"strings"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"
)

// textField reports whether a response field carries text a broker
// composes, which may name its own addresses, hosts or listeners, and what
// replaces it when it does: the description of the error code named
// codeField in the same struct, or, for "", nothing.
func textField(name string) (codeField string, ok bool) {
	switch name {
	case "ErrorMessage":
		return "ErrorCode", true
	case "AcknowledgeErrorMessage":
		return "AcknowledgeErrorCode", true
	case "StatusDetail":
		return "", true
	}
	return "", false
}

// clientHostField is the client host a broker reports for group members:
// through the proxy, always the proxy's own address on the upstream side.
// It is withheld (empty) in every response.
const clientHostField = "ClientHost"

// NamesUpstream reports whether text may name the upstream cluster's own
// addresses, hosts or listeners: it contains a listener URI ("NAME://"), an
// IP address, a host:port whose host has a letter or a dot, or one of hosts
// (the upstream brokers' and bootstrap servers' host names and addresses,
// compared without case). It errs on the side of withholding: a false match
// only costs a client the detail of a message.
func NamesUpstream(text string, hosts []string) bool {
	if text == "" {
		return false
	}
	if strings.Contains(text, "://") {
		return true
	}
	lower := strings.ToLower(text)
	for _, h := range hosts {
		if h != "" && strings.Contains(lower, strings.ToLower(h)) {
			return true
		}
	}
	for _, tok := range strings.FieldsFunc(text, func(r rune) bool {
		return r == ' ' || r == ',' || r == ';' || r == '/' || r == '(' || r == ')' || r == '"' || r == '\'' ||
			r == '=' || r == '\t' || r == '\n' || r == '<' || r == '>' || r == '{' || r == '}'
	}) {
		tok = strings.TrimRight(tok, ".:")
		if net.ParseIP(strings.Trim(tok, "[]")) != nil {
			return true
		}
		if h, p, err := net.SplitHostPort(tok); err == nil && h != "" && isPort(p) &&
			(net.ParseIP(h) != nil || strings.ContainsAny(h, ".abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ")) {
			return true
		}
	}
	return false
}

func isPort(p string) bool {
	if len(p) < 2 || len(p) > 5 {
		return false
	}
	for _, c := range p {
		if c < '0' || c > '9' {
			return false
		}
	}
	return true
}

// textPlan says where, in one struct type, scrubText has work: its text
// fields (with the index of the error code beside each, or -1), its client
// host fields, and the fields that lead to more of either. Plans are built
// once per response type, by Default, so a response is walked without
// looking at the fields that cannot hold text (records, ids, offsets).
type textPlan struct {
	texts  [][2]int // field index, error code field index (-1: none)
	hosts  []int
	nested []nestedPlan
}

type nestedPlan struct {
	field int
	plan  *textPlan
}

// planText builds t's plan, nil when t holds nothing to scrub.
func planText(t reflect.Type) *textPlan {
	for t.Kind() == reflect.Pointer || t.Kind() == reflect.Slice {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return nil
	}
	p := &textPlan{}
	for i := 0; i < t.NumField(); i++ {
		f := t.Field(i)
		if !f.IsExported() {
			continue
		}
		if codeField, ok := textField(f.Name); ok {
			code := -1
			if c, ok := t.FieldByName(codeField); ok && codeField != "" && c.Type.Kind() == reflect.Int16 {
				code = c.Index[0]
			}
			p.texts = append(p.texts, [2]int{i, code})
			continue
		}
		if f.Name == clientHostField && f.Type.Kind() == reflect.String {
			p.hosts = append(p.hosts, i)
			continue
		}
		switch k := f.Type.Kind(); {
		case k == reflect.Struct, k == reflect.Pointer && f.Type.Elem().Kind() == reflect.Struct,
			k == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
			if sub := planText(f.Type); sub != nil {
				p.nested = append(p.nested, nestedPlan{field: i, plan: sub})
			}
		}
	}
	if len(p.texts) == 0 && len(p.hosts) == 0 && len(p.nested) == 0 {
		return nil
	}
	return p
}

// scrubText withholds, anywhere in a decoded response, the text fields that
// name the upstream and every client host, following plan (planText of the
// response's type); it reports whether it changed anything. m's upstream
// hosts are asked for only when there is text to check.
func scrubText(resp kmsg.Response, plan *textPlan, m AddrMap) bool {
	if plan == nil {
		return false
	}
	return plan.scrub(reflect.ValueOf(resp).Elem(), &upstreamHosts{m: m})
}

// upstreamHosts asks an AddrMap for its hosts once, when first needed.
type upstreamHosts struct {
	m     AddrMap
	hosts []string
	asked bool
}

func (u *upstreamHosts) get() []string {
	if !u.asked {
		u.hosts, u.asked = u.m.UpstreamHosts(), true
	}
	return u.hosts
}

func (p *textPlan) scrub(v reflect.Value, hosts *upstreamHosts) bool {
	changed := false
	for _, tf := range p.texts {
		changed = withhold(v, v.Field(tf[0]), tf[1], hosts) || changed
	}
	for _, i := range p.hosts {
		if fv := v.Field(i); fv.String() != "" {
			fv.SetString("")
			changed = true
		}
	}
	for _, n := range p.nested {
		fv := v.Field(n.field)
		switch fv.Kind() {
		case reflect.Struct:
			changed = n.plan.scrub(fv, hosts) || changed
		case reflect.Pointer:
			if !fv.IsNil() {
				changed = n.plan.scrub(fv.Elem(), hosts) || changed
			}
		case reflect.Slice:
			for j := 0; j < fv.Len(); j++ {
				changed = n.plan.scrub(fv.Index(j), hosts) || changed
			}
		}
	}
	return changed
}

// withhold replaces one text field of struct v when it names the upstream:
// a nullable one becomes null (clients then show the error code's own
// message), a plain string the description of the error code beside it
// (field index code, -1 for none), or empty.
func withhold(v, fv reflect.Value, code int, hosts *upstreamHosts) bool {
	switch fv.Kind() {
	case reflect.Pointer:
		if fv.IsNil() || fv.Elem().String() == "" || !NamesUpstream(fv.Elem().String(), hosts.get()) {
			return false
		}
		fv.SetZero()
		return true
	case reflect.String:
		if fv.String() == "" || !NamesUpstream(fv.String(), hosts.get()) {
			return false
		}
		desc := ""
		if code >= 0 {
			if e, ok := kerr.ErrorForCode(int16(v.Field(code).Int())).(*kerr.Error); ok {
				desc = e.Description
			}
		}
		fv.SetString(desc)
		return true
	}
	return false
}

// withheldConfig reports whether a broker configuration must never be shown
// by value: it names the brokers' listeners, their addresses, or the
// controllers'. The list is by name and by the suffixes Kafka and common
// plugins use for such settings.
func withheldConfig(name string) bool {
	switch name {
	case "listeners", "advertised.listeners", "listener.security.protocol.map",
		"inter.broker.listener.name", "security.inter.broker.protocol", "controller.listener.names", "early.start.listeners",
		"control.plane.listener.name", "controller.quorum.voters", "controller.quorum.bootstrap.servers",
		"zookeeper.connect", "host.name", "port", "advertised.host.name", "advertised.port":
		return true
	}
	for _, suffix := range []string{"bootstrap.servers", ".listeners", "listener.name", "listener.names", "quorum.voters"} {
		if strings.HasSuffix(name, suffix) {
			return true
		}
	}
	return false
}

// listenerScoped reports a configuration whose very name carries a
// listener's name (listener.name.<listener>.<config>): it is dropped
// whole, name and value.
func listenerScoped(name string) bool { return strings.HasPrefix(name, "listener.name.") }

// describeConfigs withholds, in every resource, the configurations that name
// the upstream: listener-scoped entries (and synonyms) are removed; the
// values of withheld configurations, and of any whose value names the
// upstream, become null and are marked sensitive, as Kafka shows a
// password; synonyms follow the same rules.
func describeConfigs(r kmsg.Response, m AddrMap) (bool, error) {
	resp := r.(*kmsg.DescribeConfigsResponse)
	hosts := m.UpstreamHosts()
	changed := false
	for i := range resp.Resources {
		res := &resp.Resources[i]
		keep := res.Configs[:0]
		for _, c := range res.Configs {
			if listenerScoped(c.Name) {
				changed = true
				continue
			}
			hide := withheldConfig(c.Name) || c.Value != nil && NamesUpstream(*c.Value, hosts)
			syns := c.ConfigSynonyms[:0]
			for _, s := range c.ConfigSynonyms {
				if listenerScoped(s.Name) {
					changed = true
					continue
				}
				if s.Value != nil && (hide || withheldConfig(s.Name) || NamesUpstream(*s.Value, hosts)) {
					s.Value = nil
					changed = true
				}
				syns = append(syns, s)
			}
			c.ConfigSynonyms = syns
			if hide && (c.Value != nil || !c.IsSensitive) {
				c.Value, c.IsSensitive = nil, true
				changed = true
			}
			keep = append(keep, c)
		}
		res.Configs = keep
	}
	return changed, nil
}
