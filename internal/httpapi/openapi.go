package httpapi

import (
	_ "embed"
	"net/http"
)

// openAPIDoc is the OpenAPI 3.1 description of every route, written by hand
// (a generator would need a schema language of its own for what the
// handlers accept). TestOpenAPIMatchesRoutes keeps its paths and methods
// equal to the route list, so an endpoint cannot be added or removed without it.
//
//go:embed openapi.json
var openAPIDoc []byte

func (a *api) openAPI(w http.ResponseWriter, _ *http.Request) error {
	writeRaw(w, http.StatusOK, openAPIDoc)
	return nil
}
