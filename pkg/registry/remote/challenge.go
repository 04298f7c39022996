package remote

import (
	"net/http"
	"strings"
)

// challenge is one WWW-Authenticate challenge (RFC 7235): a scheme such as
// "bearer" or "basic" and its parameters (realm, service, scope).
type challenge struct {
	scheme string
	params map[string]string
}

// parseChallenges reads every WWW-Authenticate header of a response. A
// header may hold several challenges; their parameters are key=value or
// key="quoted value" pairs separated by commas.
func parseChallenges(h http.Header) []challenge {
	var out []challenge
	for _, v := range h.Values("WWW-Authenticate") {
		out = append(out, parseChallengeHeader(v)...)
	}
	return out
}

func parseChallengeHeader(s string) []challenge {
	var out []challenge
	var cur *challenge
	for {
		s = strings.TrimLeft(s, " \t,")
		if s == "" {
			break
		}
		tok, rest := readToken(s)
		if tok == "" {
			break // malformed: stop rather than loop
		}
		rest = strings.TrimLeft(rest, " \t")
		if strings.HasPrefix(rest, "=") && cur != nil {
			val, after := readValue(strings.TrimLeft(rest[1:], " \t"))
			cur.params[strings.ToLower(tok)] = val
			s = after
			continue
		}
		out = append(out, challenge{scheme: strings.ToLower(tok), params: map[string]string{}})
		cur = &out[len(out)-1]
		s = rest
	}
	return out
}

func readToken(s string) (string, string) {
	i := 0
	for i < len(s) && !strings.ContainsRune(" \t,=\"", rune(s[i])) {
		i++
	}
	return s[:i], s[i:]
}

func readValue(s string) (string, string) {
	if !strings.HasPrefix(s, `"`) {
		return readToken(s)
	}
	var b strings.Builder
	for i := 1; i < len(s); i++ {
		switch s[i] {
		case '\\':
			if i+1 < len(s) {
				i++
				b.WriteByte(s[i])
			}
		case '"':
			return b.String(), s[i+1:]
		default:
			b.WriteByte(s[i])
		}
	}
	return b.String(), ""
}
