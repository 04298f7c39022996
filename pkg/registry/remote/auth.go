package remote

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/containerd/errdefs"

	"github.com/cri-rt/cri-rt/pkg/config"
)

// Credentials authenticate to one registry. RegistryToken is a bearer token
// used as is; IdentityToken is an OAuth2 refresh token exchanged for bearer
// tokens; Username/Password serve basic auth and token requests.
type Credentials struct {
	Username      string
	Password      string
	IdentityToken string
	RegistryToken string
}

// FromAuthConfig converts the config form (where "auth" is
// base64(user:password), as in a docker config.json) to Credentials.
func FromAuthConfig(a *config.AuthConfig) (*Credentials, error) {
	if a == nil {
		return nil, nil
	}
	return fromFields(a.Username, a.Password, a.Auth, a.IdentityToken, "")
}

func fromFields(user, pass, auth, identity, registryToken string) (*Credentials, error) {
	c := &Credentials{Username: user, Password: pass, IdentityToken: identity, RegistryToken: registryToken}
	if auth != "" && user == "" && pass == "" {
		raw, err := base64.StdEncoding.DecodeString(auth)
		if err != nil {
			return nil, fmt.Errorf("auth is not base64(user:password): %w", errdefs.ErrInvalidArgument)
		}
		u, p, ok := strings.Cut(string(raw), ":")
		if !ok {
			return nil, fmt.Errorf("auth is not base64(user:password): %w", errdefs.ErrInvalidArgument)
		}
		c.Username, c.Password = u, p
	}
	if *c == (Credentials{}) {
		return nil, nil
	}
	return c, nil
}

// NewCredentials builds Credentials from the fields of a CRI AuthConfig.
func NewCredentials(user, pass, auth, identityToken, registryToken string) (*Credentials, error) {
	return fromFields(user, pass, auth, identityToken, registryToken)
}

// authState is what one endpoint asked for: none yet, basic, or a bearer
// token for the repository's pull scope.
type authState struct {
	scheme  string // "", "basic" or "bearer"
	token   string
	expires time.Time
}

func (a *authState) header(creds *Credentials) string {
	switch a.scheme {
	case "basic":
		if creds != nil && creds.Username != "" {
			return "Basic " + base64.StdEncoding.EncodeToString([]byte(creds.Username+":"+creds.Password))
		}
	case "bearer":
		if a.token != "" && (a.expires.IsZero() || time.Now().Before(a.expires)) {
			return "Bearer " + a.token
		}
	}
	return ""
}

// tokenResponse is the token server's answer (docker token spec and OAuth2).
type tokenResponse struct {
	Token       string `json:"token"`
	AccessToken string `json:"access_token"`
	ExpiresIn   int    `json:"expires_in"`
}

// fetchToken gets a bearer token for scope from the realm of challenge c.
// Credentials go only to the realm the registry named; a registry token is
// used without asking anyone.
func fetchToken(ctx context.Context, hc *http.Client, c challenge, scope string, creds *Credentials) (string, time.Time, error) {
	if creds != nil && creds.RegistryToken != "" {
		return creds.RegistryToken, time.Time{}, nil
	}
	realm := c.params["realm"]
	u, err := url.Parse(realm)
	if err != nil || (u.Scheme != "https" && u.Scheme != "http") || u.Host == "" {
		return "", time.Time{}, fmt.Errorf("registry sent an invalid token realm %q", realm)
	}
	var req *http.Request
	if creds != nil && creds.IdentityToken != "" {
		form := url.Values{
			"grant_type":    {"refresh_token"},
			"refresh_token": {creds.IdentityToken},
			"service":       {c.params["service"]},
			"scope":         {scope},
			"client_id":     {"cri-rt"},
		}
		req, err = http.NewRequestWithContext(ctx, http.MethodPost, realm, strings.NewReader(form.Encode()))
		if err != nil {
			return "", time.Time{}, err
		}
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	} else {
		q := u.Query()
		if s := c.params["service"]; s != "" {
			q.Set("service", s)
		}
		q.Set("scope", scope)
		u.RawQuery = q.Encode()
		req, err = http.NewRequestWithContext(ctx, http.MethodGet, u.String(), nil)
		if err != nil {
			return "", time.Time{}, err
		}
		if creds != nil && creds.Username != "" {
			req.SetBasicAuth(creds.Username, creds.Password)
		}
	}
	resp, err := hc.Do(req)
	if err != nil {
		return "", time.Time{}, fmt.Errorf("token request to %s: %w", u.Host, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	if resp.StatusCode != http.StatusOK {
		err := fmt.Errorf("token server %s answered %s: %s", u.Host, resp.Status, snippet(body))
		if resp.StatusCode == http.StatusUnauthorized || resp.StatusCode == http.StatusForbidden {
			return "", time.Time{}, fmt.Errorf("%w: %w", err, errdefs.ErrUnauthenticated)
		}
		return "", time.Time{}, err
	}
	var tr tokenResponse
	if err := json.Unmarshal(body, &tr); err != nil {
		return "", time.Time{}, fmt.Errorf("token server %s: bad JSON: %w", u.Host, err)
	}
	tok := tr.Token
	if tok == "" {
		tok = tr.AccessToken
	}
	if tok == "" {
		return "", time.Time{}, fmt.Errorf("token server %s returned no token", u.Host)
	}
	var exp time.Time
	if tr.ExpiresIn > 0 {
		// Refresh a little early so a token does not expire mid-request.
		exp = time.Now().Add(time.Duration(tr.ExpiresIn)*time.Second - 10*time.Second)
	}
	return tok, exp, nil
}

func snippet(b []byte) string {
	s := strings.TrimSpace(string(b))
	if len(s) > 200 {
		s = s[:200] + "..."
	}
	return s
}
