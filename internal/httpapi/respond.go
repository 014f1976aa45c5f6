package httpapi

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	courier "github.com/courierhq/courier"
)

// bodyStart is the most room reserved for a body before its bytes arrive:
// a declared Content-Length is only a claim, and a client that sends
// nothing of what it declared must not make the server hold memory for it.
// A batch of a hundred 128-byte messages fits.
const bodyStart = 32 << 10

// readBody reads r to its end. Its buffer starts at the declared length
// (hint) up to bodyStart, and then doubles, but never past the declared
// length until the body proves longer: io.ReadAll grows from 512 bytes, so
// a batch of a hundred messages was copied six times and took twice its
// size.
func readBody(r io.Reader, hint int64) ([]byte, error) {
	if hint <= 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, 0, min(hint, bodyStart)+1) // +1: the read that finds the end needs no growing
	for {
		n, err := r.Read(b[len(b):cap(b)])
		b = b[:len(b)+n]
		if err == io.EOF {
			return b, nil
		}
		if err != nil {
			return b, err
		}
		if len(b) == cap(b) {
			more := cap(b) // double, up to what was declared (+1, as above)
			if int64(cap(b)) <= hint {
				more = int(min(int64(more), hint+1-int64(cap(b))))
			}
			b = slices.Grow(b, more)
		}
	}
}

// apiError is an error this package decided on itself (bad JSON, a bad
// duration, a body over the limit): its message is written for the client.
type apiError struct {
	status int
	code   string
	msg    string
}

func (e *apiError) Error() string { return e.msg }

// invalidf is a 400 invalid_argument whose message names what is wrong.
func invalidf(format string, args ...any) error {
	return &apiError{http.StatusBadRequest, courier.CodeInvalidArgument, fmt.Sprintf(format, args...)}
}

// decode reads the request body, one JSON object, into v.
//
// An empty body leaves v as it is: every request object of the API has only
// optional fields at the JSON level (handlers check what they require), so
// `curl -X POST …/purge` works without `-d '{}'`.
//
// A body that is present must be declared `Content-Type: application/json`.
// Being strict here is deliberate: a web page can make a browser send a
// cross-site POST without a CORS preflight only with a form or text content
// type, or with none at all (a fetch of an untyped Blob), so refusing those
// keeps a page the user visits from sending to or acking on a courier
// listening on localhost.
//
// Unknown fields and data after the object are rejected; a body over the
// limit answers 413 too_large.
func (a *api) decode(w http.ResponseWriter, r *http.Request, v any) error {
	body, err := readBody(http.MaxBytesReader(w, r.Body, a.maxBytes), min(r.ContentLength, a.maxBytes))
	if err != nil {
		return decodeError(err)
	}
	if len(body) == 0 {
		return nil
	}
	if ct := r.Header.Get("Content-Type"); !isJSON(ct) {
		if ct == "" {
			return invalidf("a request body needs Content-Type: application/json")
		}
		return invalidf("Content-Type must be application/json, got %q", ct)
	}
	// JSON text is UTF-8 (RFC 8259). encoding/json would quietly turn bad
	// bytes in strings into U+FFFD, and keep them in raw bodies, which would
	// then make every answer that carries the body invalid JSON.
	if !utf8.Valid(body) {
		return invalidf("request body is not valid UTF-8, as JSON text must be")
	}
	if f, ok := v.(fastDecoder); ok && f.decodeFast(body) {
		return nil
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return decodeError(err)
	}
	if _, err := dec.Token(); !errors.Is(err, io.EOF) {
		var mbe *http.MaxBytesError
		if errors.As(err, &mbe) {
			return decodeError(err)
		}
		return invalidf("request body has data after the JSON object")
	}
	return nil
}

// fastDecoder is a request that can decode its plain form faster than
// encoding/json, deciding as encoding/json would (send_json.go); when
// decodeFast declines, decode uses encoding/json.
type fastDecoder interface {
	decodeFast(body []byte) bool
}

func isJSON(contentType string) bool {
	mt, _, err := mime.ParseMediaType(contentType)
	return err == nil && mt == "application/json"
}

// decodeError turns an error of json.Decoder into a message for the client
// that says where the problem is.
func decodeError(err error) error {
	var (
		mbe *http.MaxBytesError
		se  *json.SyntaxError
		te  *json.UnmarshalTypeError
		pe  *time.ParseError
	)
	switch {
	case errors.As(err, &mbe):
		return &apiError{http.StatusRequestEntityTooLarge, courier.CodeTooLarge,
			fmt.Sprintf("request body is larger than %d bytes", mbe.Limit)}
	case errors.As(err, &se):
		return invalidf("request body is not valid JSON: %s (at byte %d)", se.Error(), se.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return invalidf("request body ends in the middle of a JSON value")
	case errors.As(err, &te):
		return typeError(te)
	case errors.As(err, &pe):
		// The only time field of the API's requests is not_before.
		return invalidf("not_before must be an RFC 3339 time like \"2026-12-01T09:00:00Z\", got %q", pe.Value)
	case strings.HasPrefix(err.Error(), "json: unknown field "):
		return invalidf("unknown field %s", strings.TrimPrefix(err.Error(), "json: unknown field "))
	}
	return invalidf("request body could not be read as JSON")
}

// typeError names the field whose value has the wrong JSON type.
func typeError(te *json.UnmarshalTypeError) error {
	field := jsonPath(te.Field)
	if field == "" {
		return invalidf("request body must be a JSON object, got %s", te.Value)
	}
	return invalidf("field %q must be %s, got %s", field, jsonKind(te.Type.Kind().String()), te.Value)
}

// jsonPath drops the Go names of embedded structs that encoding/json puts in
// UnmarshalTypeError.Field ("NewMessage.priority" → "priority"); the API's
// JSON names are all lower case.
func jsonPath(field string) string {
	parts := strings.Split(field, ".")
	out := parts[:0]
	for _, p := range parts {
		if p != "" && !(p[0] >= 'A' && p[0] <= 'Z') {
			out = append(out, p)
		}
	}
	return strings.Join(out, ".")
}

func jsonKind(goKind string) string {
	switch goKind {
	case "string":
		return "a string"
	case "bool":
		return "true or false"
	case "int", "int8", "int16", "int32", "int64", "uint", "uint8", "uint16", "uint32", "uint64":
		return "an integer"
	case "float32", "float64":
		return "a number"
	case "slice", "array":
		return "an array"
	}
	return "an object"
}

// duration parses an optional duration field ("" = 0) in Go syntax.
func duration(field, s string) (time.Duration, error) {
	if s == "" {
		return 0, nil
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, invalidf("%s must be a duration like \"250ms\", \"30s\" or \"5m\", got %q", field, s)
	}
	return d, nil
}

// optDuration parses a duration field that may be absent (nil).
func optDuration(field string, s *string) (*time.Duration, error) {
	if s == nil {
		return nil, nil
	}
	d, err := time.ParseDuration(*s)
	if err != nil {
		return nil, invalidf("%s must be a duration like \"250ms\", \"30s\" or \"5m\", got %q", field, *s)
	}
	return &d, nil
}

// writeJSON answers status with v as JSON. v is encoded before anything is
// written, so a failure to encode still gets a clean 500.
func writeJSON(w http.ResponseWriter, status int, v any) error {
	b, err := marshal(v)
	if err != nil {
		return fmt.Errorf("encode answer: %w", err)
	}
	writeRaw(w, status, append(b, '\n'))
	return nil
}

// marshal is json.Marshal without HTML escaping: answers are JSON, served
// with nosniff, and bodies and messages come back with the characters sent.
func marshal(v any) ([]byte, error) {
	var buf bytes.Buffer
	enc := json.NewEncoder(&buf)
	enc.SetEscapeHTML(false)
	if err := enc.Encode(v); err != nil {
		return nil, err
	}
	return bytes.TrimSuffix(buf.Bytes(), []byte("\n")), nil
}

func writeRaw(w http.ResponseWriter, status int, body []byte) {
	setJSONHeaders(w.Header())
	w.WriteHeader(status)
	_, _ = w.Write(body) // a failed write means the client is gone: nothing to tell it
}

// The values of the headers of a JSON answer. They are shared: a Header's
// values are replaced or appended to (which copies a full slice), never
// written in place, and net/http copies them at WriteHeader. Header.Set
// allocated a slice for each, on every answer.
var (
	jsonContentType = []string{"application/json"}
	noSniff         = []string{"nosniff"}
)

// setJSONHeaders sets the headers of a JSON answer.
func setJSONHeaders(h http.Header) {
	h["Content-Type"] = jsonContentType
	h["X-Content-Type-Options"] = noSniff
}

// writeErrorBody answers with the API's error object.
func writeErrorBody(w http.ResponseWriter, status int, code, msg string) {
	b, err := marshal(courier.ErrorBody{Error: courier.ErrorDetail{Code: code, Message: msg}})
	if err != nil { // a struct of two strings always encodes
		b = []byte(`{"error":{"code":"internal","message":"internal error"}}`)
	}
	writeRaw(w, status, append(b, '\n'))
}
