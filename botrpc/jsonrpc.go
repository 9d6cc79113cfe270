package botrpc

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
)

// Version is the JSON-RPC version every request and response carries.
const Version = "2.0"

// JSON-RPC 2.0 error codes (JSON-RPC 2.0 Specification, Section 5.1).
const (
	CodeParseError     = -32700 // the line is not JSON
	CodeInvalidRequest = -32600 // JSON, but not a request object
	CodeMethodNotFound = -32601
	CodeInvalidParams  = -32602 // wrong, missing or unknown parameters
	CodeInternalError  = -32603 // a bug in the bot server
)

// Application error codes. Like signal-cli's, they are small negative numbers outside
// the range JSON-RPC reserves.
const (
	CodeFailed        = -1 // the chat core refused or failed; the message says why
	CodeUnknownGroup  = -2 // no group with this id (or not a member)
	CodeUnreachable   = -3 // the peer could not be reached in time
	CodeInvalidInvite = -4 // the invite token is mistyped, truncated or forged
	CodeInviteExpired = -5
	CodeAlreadyMember = -6
	CodeRefused       = -7 // the peer refused (an invite used up, revoked, unknown …)
	CodeShuttingDown  = -8 // the bot is stopping
	CodeNotMember     = -9 // the bot left the group or was removed from it
)

// MaxLine bounds one request line, in bytes. A text message is at most 10 MiB; escaped
// as JSON it can grow, hence the margin.
const MaxLine = 64 << 20

// Error is a JSON-RPC error object. Handlers return one to choose the code.
type Error struct {
	Code    int    `json:"code"`
	Message string `json:"message"`
	Data    any    `json:"data,omitempty"`
}

func (e *Error) Error() string { return fmt.Sprintf("botrpc: %s (%d)", e.Message, e.Code) }

func newError(code int, format string, args ...any) *Error {
	return &Error{Code: code, Message: fmt.Sprintf(format, args...)}
}

// request is one parsed JSON-RPC request.
type request struct {
	// ID is the request id as it was sent (a string, a number or null); nil for a
	// notification, which gets no response.
	ID     json.RawMessage
	Method string
	// Params is the params member; nil when it is absent or null.
	Params json.RawMessage
}

// response is one JSON-RPC response object.
type response struct {
	JSONRPC string          `json:"jsonrpc"`
	ID      json.RawMessage `json:"id"`
	Result  any             `json:"result,omitempty"`
	Error   *Error          `json:"error,omitempty"`
}

// notification is a message from the server with no id.
type notification struct {
	JSONRPC string `json:"jsonrpc"`
	Method  string `json:"method"`
	Params  any    `json:"params"`
}

var nullID = json.RawMessage("null")

// splitBatch reports whether line is a batch (a JSON array) and returns its elements.
// A line that is not valid JSON is a parse error.
func splitBatch(line []byte) (batch []json.RawMessage, isBatch bool, err *Error) {
	line = bytes.TrimSpace(line)
	if !json.Valid(line) {
		return nil, false, newError(CodeParseError, "parse error: not valid JSON")
	}
	if len(line) == 0 || line[0] != '[' {
		return nil, false, nil
	}
	if err := json.Unmarshal(line, &batch); err != nil {
		return nil, true, newError(CodeParseError, "parse error: %v", err)
	}
	if len(batch) == 0 {
		return nil, true, newError(CodeInvalidRequest, "invalid request: empty batch")
	}
	return batch, true, nil
}

// parseRequest decodes one request object (JSON-RPC 2.0 Specification, Section 4). The
// input is valid JSON. On error, the returned request still carries the id when it
// could be read, so that the error response names it.
func parseRequest(b []byte) (*request, *Error) {
	var obj map[string]json.RawMessage
	if err := json.Unmarshal(b, &obj); err != nil || obj == nil {
		return &request{ID: nullID}, newError(CodeInvalidRequest, "invalid request: not a JSON object")
	}
	req := &request{}
	if id, ok := obj["id"]; ok {
		id = bytes.TrimSpace(id)
		switch {
		case len(id) == 0:
			return &request{ID: nullID}, newError(CodeInvalidRequest, "invalid request: empty id")
		case id[0] == '"' || id[0] == '-' || (id[0] >= '0' && id[0] <= '9') || string(id) == "null":
			req.ID = bytes.Clone(id)
		default:
			return &request{ID: nullID}, newError(CodeInvalidRequest, "invalid request: id must be a string, a number or null")
		}
	}
	// A request whose id is absent is a notification: it gets no response, errors included.
	errID := req.ID
	if errID == nil {
		errID = nullID
	}
	var version string
	if v, ok := obj["jsonrpc"]; !ok || json.Unmarshal(v, &version) != nil || version != Version {
		return &request{ID: errID}, newError(CodeInvalidRequest, "invalid request: jsonrpc must be \"2.0\"")
	}
	m, ok := obj["method"]
	if !ok || json.Unmarshal(m, &req.Method) != nil || bytes.TrimSpace(m)[0] != '"' {
		return &request{ID: errID}, newError(CodeInvalidRequest, "invalid request: method must be a string")
	}
	if p, ok := obj["params"]; ok {
		p = bytes.TrimSpace(p)
		switch {
		case string(p) == "null":
		case len(p) > 0 && (p[0] == '{' || p[0] == '['):
			req.Params = bytes.Clone(p)
		default:
			return &request{ID: errID}, newError(CodeInvalidRequest, "invalid request: params must be an object or an array")
		}
	}
	return req, nil
}

// marshal encodes req as one request object, for tests and clients.
func (r *request) marshal() ([]byte, error) {
	m := map[string]any{"jsonrpc": Version, "method": r.Method}
	if r.ID != nil {
		m["id"] = r.ID
	}
	if r.Params != nil {
		m["params"] = r.Params
	}
	return json.Marshal(m)
}

// decodeParams decodes by-name params into v (a pointer to a struct), refusing unknown
// members and values of the wrong type with -32602 errors that name the parameter.
func decodeParams(raw json.RawMessage, v any) *Error {
	if len(raw) == 0 {
		raw = json.RawMessage("{}")
	}
	if raw[0] == '[' {
		return newError(CodeInvalidParams, "invalid params: params must be an object (by name), not an array")
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	dec.UseNumber()
	err := dec.Decode(v)
	if err == nil {
		return nil
	}
	var te *json.UnmarshalTypeError
	if errors.As(err, &te) {
		field := te.Field
		if field == "" {
			return newError(CodeInvalidParams, "invalid params: params must be an object")
		}
		return newError(CodeInvalidParams, "invalid params: %s must be %s", field, kindName(te.Type))
	}
	if name, ok := strings.CutPrefix(err.Error(), "json: unknown field "); ok {
		return newError(CodeInvalidParams, "invalid params: unknown parameter %s", name)
	}
	return newError(CodeInvalidParams, "invalid params: %v", err)
}

func kindName(t reflect.Type) string {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "a boolean"
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.Slice, reflect.Array:
		return "an array"
	case reflect.Struct, reflect.Map:
		return "an object"
	}
	return t.String()
}

// requireParam is the error for a missing parameter.
func requireParam(name string) *Error {
	return newError(CodeInvalidParams, "invalid params: %s is required", name)
}
