package httpapi

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"
)

// CORS answers for the browser, on every /v1 path, when Options.CORSOrigins
// is set: a request whose Origin is allowed gets
// Access-Control-Allow-Origin naming that origin (never a literal "*", so the
// answer is the same whether or not the page sends credentials), and a
// preflight (OPTIONS with Access-Control-Request-Method) is answered 204 with
// the methods and headers the API takes. Every /v1 answer then carries
// Vary: Origin, so a cache never hands one origin's answer to another.
// Without configured origins nothing is added, and a browser keeps pages of
// other origins from reading answers (the default).
const (
	corsMethods = "GET, POST, PUT, DELETE"
	corsHeaders = "Content-Type, Authorization, Last-Event-ID"
	corsExpose  = "Location, Retry-After"
	corsMaxAge  = "7200" // seconds; the longest Chromium honours
)

// cors adds CORS headers for r; it reports true when it answered r (a preflight).
func (a *api) cors(w http.ResponseWriter, r *http.Request) bool {
	if len(a.origins) == 0 || !strings.HasPrefix(r.URL.Path, "/v1/") {
		return false
	}
	h := w.Header()
	h.Add("Vary", "Origin")
	origin := r.Header.Get("Origin")
	if origin == "" || !a.allowOrigin(origin) {
		return false
	}
	h.Set("Access-Control-Allow-Origin", origin)
	if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
		h.Add("Vary", "Access-Control-Request-Method")
		h.Add("Vary", "Access-Control-Request-Headers")
		h.Set("Access-Control-Allow-Methods", corsMethods)
		h.Set("Access-Control-Allow-Headers", corsHeaders)
		h.Set("Access-Control-Max-Age", corsMaxAge)
		w.WriteHeader(http.StatusNoContent)
		return true
	}
	h.Set("Access-Control-Expose-Headers", corsExpose)
	return false
}

func (a *api) allowOrigin(origin string) bool {
	return slices.Contains(a.origins, "*") || slices.Contains(a.origins, origin)
}

// CheckOrigin reports whether s is a CORS origin as Options.CORSOrigins
// takes it: "*", or an origin written as a browser sends it in the Origin
// header (scheme://host[:port], lower case, no path), which is compared exactly.
func CheckOrigin(s string) error {
	if s == "*" {
		return nil
	}
	u, err := url.Parse(s)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.User != nil ||
		u.Path != "" || u.RawQuery != "" || u.Fragment != "" || u.Opaque != "" || u.ForceQuery {
		return errors.New(`want "*" or an origin like https://app.example.com or http://localhost:3000 (no path)`)
	}
	if s != strings.ToLower(s) || s != u.Scheme+"://"+u.Host {
		return errors.New("write the origin as a browser sends it: lower case, scheme://host[:port]")
	}
	return nil
}
