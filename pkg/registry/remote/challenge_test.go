package remote

import (
	"net/http"
	"reflect"
	"testing"
)

func TestParseChallenges(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []challenge
	}{
		{`Bearer realm="https://auth.example/token",service="registry.example",scope="repository:a/b:pull"`,
			[]challenge{{"bearer", map[string]string{"realm": "https://auth.example/token", "service": "registry.example", "scope": "repository:a/b:pull"}}}},
		{`Basic realm="basic-realm"`, []challenge{{"basic", map[string]string{"realm": "basic-realm"}}}},
		{`Basic realm="x", Bearer realm="https://t/\"q\"", service=s`,
			[]challenge{{"basic", map[string]string{"realm": "x"}}, {"bearer", map[string]string{"realm": `https://t/"q"`, "service": "s"}}}},
		{`Negotiate`, []challenge{{"negotiate", map[string]string{}}}},
		{``, nil},
		{`=,,"`, nil},
	} {
		h := http.Header{}
		if tc.in != "" {
			h.Set("WWW-Authenticate", tc.in)
		}
		if got := parseChallenges(h); !reflect.DeepEqual(got, tc.want) {
			t.Errorf("%q: got %+v want %+v", tc.in, got, tc.want)
		}
	}
}

func FuzzParseChallenge(f *testing.F) {
	f.Add(`Bearer realm="https://a",service="b"`)
	f.Fuzz(func(t *testing.T, s string) { _ = parseChallengeHeader(s) })
}
