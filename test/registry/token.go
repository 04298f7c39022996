package registry

import (
	"crypto"
	"crypto/rand"
	"crypto/rsa"
	"crypto/sha256"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

// TokenServer is a minimal docker token-auth server: it checks basic
// credentials and issues RS256 JWTs the registry verifies with the
// certificate in RootCertBundle.
type TokenServer struct {
	URL            string
	Service        string
	Issuer         string
	RootCertBundle string
	User, Password string
	// Requests counts token requests.
	Requests atomic.Int64
	key      *signingKey
}

// NewTokenServer starts a token server accepting user/password.
func NewTokenServer(t testing.TB, user, password string) *TokenServer {
	t.Helper()
	ts := &TokenServer{Service: "cri-rt-test-registry", Issuer: "cri-rt-test-issuer", User: user, Password: password, key: newSigningKey(t)}
	ts.RootCertBundle = filepath.Join(t.TempDir(), "token-ca.crt")
	writePEM(t, ts.RootCertBundle, "CERTIFICATE", ts.key.certDER)
	srv := httptest.NewServer(http.HandlerFunc(ts.serve))
	t.Cleanup(srv.Close)
	ts.URL = srv.URL + "/token"
	return ts
}

func (ts *TokenServer) serve(w http.ResponseWriter, r *http.Request) {
	ts.Requests.Add(1)
	u, p, ok := r.BasicAuth()
	if !ok || u != ts.User || p != ts.Password {
		http.Error(w, `{"details":"bad credentials"}`, http.StatusUnauthorized)
		return
	}
	if r.URL.Query().Get("service") != ts.Service {
		http.Error(w, "wrong service", http.StatusBadRequest)
		return
	}
	var access []map[string]any
	for _, scope := range r.URL.Query()["scope"] {
		parts := strings.Split(scope, ":")
		if len(parts) == 3 {
			access = append(access, map[string]any{"type": parts[0], "name": parts[1], "actions": strings.Split(parts[2], ",")})
		}
	}
	tok, err := ts.sign(u, access)
	if err != nil {
		http.Error(w, err.Error(), http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "application/json")
	_ = json.NewEncoder(w).Encode(map[string]any{"token": tok, "expires_in": 300})
}

func (ts *TokenServer) sign(sub string, access []map[string]any) (string, error) {
	now := time.Now()
	header := map[string]any{"typ": "JWT", "alg": "RS256", "x5c": []string{base64.StdEncoding.EncodeToString(ts.key.certDER)}}
	claims := map[string]any{
		"iss": ts.Issuer, "sub": sub, "aud": ts.Service,
		"exp": now.Add(5 * time.Minute).Unix(), "nbf": now.Add(-time.Minute).Unix(), "iat": now.Unix(),
		"jti": fmt.Sprint(now.UnixNano()), "access": access,
	}
	enc := func(v any) string {
		b, _ := json.Marshal(v)
		return base64.RawURLEncoding.EncodeToString(b)
	}
	signing := enc(header) + "." + enc(claims)
	sum := sha256.Sum256([]byte(signing))
	sig, err := rsa.SignPKCS1v15(rand.Reader, ts.key.key, crypto.SHA256, sum[:])
	if err != nil {
		return "", err
	}
	return signing + "." + base64.RawURLEncoding.EncodeToString(sig), nil
}

// Htpasswd writes a bcrypt htpasswd file for user:password with the
// htpasswd tool (apache2-utils).
func Htpasswd(t testing.TB, user, password string) string {
	t.Helper()
	out, err := execOutput("htpasswd", "-Bbn", user, password)
	if err != nil {
		t.Fatalf("htpasswd: %v (install apache2-utils)", err)
	}
	p := filepath.Join(t.TempDir(), "htpasswd")
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
	return p
}
