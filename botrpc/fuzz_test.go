package botrpc

import (
	"bytes"
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"
)

var fuzzSeeds = []string{
	`{"jsonrpc":"2.0","id":1,"method":"identity"}`,
	`{"jsonrpc":"2.0","id":"abc","method":"send","params":{"groupId":"01","message":"hi"}}`,
	`{"jsonrpc":"2.0","method":"send","params":{"groupId":"01","message":"hi"}}`,
	`{"jsonrpc":"2.0","id":null,"method":"version","params":null}`,
	`{"jsonrpc":"2.0","id":-1.5e3,"method":"history","params":{"groupId":"01","before":3,"limit":2}}`,
	`{"jsonrpc":"2.0","id":2,"method":"createGroup","params":{"name":"x","policy":"mls,aes","suite":61441}}`,
	`{"jsonrpc":"2.0","id":3,"method":"add","params":{"groupId":"01","peerId":"12D3KooWPKodyc3JZeHYL7vDdvwZmr8FWpxj3ygYcPAM9nncEoDf","addrs":["/ip4/1.2.3.4/tcp/1"]}}`,
	`{"jsonrpc":"2.0","id":4,"method":"send","params":["01","x"]}`,
	`[{"jsonrpc":"2.0","id":1,"method":"version"},{"jsonrpc":"2.0","method":"x"},3]`,
	`[]`, `{}`, `null`, `"x"`, `{"jsonrpc":"2.0","id":{},"method":"x"}`, `{"jsonrpc":"2.0","id":1,"method":"x","params":7}`,
	`{"jsonrpc":"2.0","id":1,"method":"send","params":{"groupId":5}}`,
	"{\"jsonrpc\":\"2.0\",\"id\":1,\"method\":\"send\",\"params\":{\"message\":\"\\u0000\\n\xff\"}}",
	`{"jsonrpc":"2.0","id":1,"id":2,"method":"version"}`,
	`{"jsonrpc":"2.0","id":1,"method":"invite","params":{"groupId":"01","ttl":99999999999999999999}}`,
}

// FuzzParseRequest: parsing never panics, and a parsed request marshals to one that
// parses to the same request.
func FuzzParseRequest(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, line []byte) {
		batch, isBatch, perr := splitBatch(line)
		if perr != nil {
			if perr.Code != CodeParseError && perr.Code != CodeInvalidRequest {
				t.Fatalf("splitBatch code %d", perr.Code)
			}
			return
		}
		items := batch
		if !isBatch {
			items = []json.RawMessage{bytes.TrimSpace(line)}
		}
		for _, item := range items {
			req, perr := parseRequest(item)
			if req == nil {
				t.Fatal("nil request")
			}
			if perr != nil {
				if perr.Code != CodeInvalidRequest || req.ID == nil {
					t.Fatalf("parse error %+v with id %q", perr, req.ID)
				}
				continue
			}
			b, err := req.marshal()
			if err != nil {
				t.Fatalf("marshal %+v: %v", req, err)
			}
			again, perr := parseRequest(b)
			if perr != nil {
				t.Fatalf("reparse of %s: %v", b, perr)
			}
			if again.Method != req.Method || !sameJSON(again.ID, req.ID) || !sameJSON(again.Params, req.Params) {
				t.Fatalf("round trip: %+v != %+v", again, req)
			}
		}
	})
}

func sameJSON(a, b json.RawMessage) bool {
	if (a == nil) != (b == nil) {
		return false
	}
	var ca, cb bytes.Buffer
	if a != nil && (json.Compact(&ca, a) != nil || json.Compact(&cb, b) != nil) {
		return false
	}
	return bytes.Equal(ca.Bytes(), cb.Bytes())
}

// FuzzServeLine: whatever line comes in, the server answers with well-formed JSON-RPC
// lines only, and exactly one response to a single request that has an id.
func FuzzServeLine(f *testing.F) {
	for _, s := range fuzzSeeds {
		f.Add(s)
	}
	fc := newFake(f)
	f.Fuzz(func(t *testing.T, line string) {
		if strings.ContainsAny(line, "\n") {
			return // one line per request
		}
		s := New(fc, Options{RequestTimeout: time.Second, MaxLine: 1 << 16})
		var out bytes.Buffer
		if err := s.ServeConn(context.Background(), strings.NewReader(line+"\n"), &out); err != nil {
			t.Fatal(err)
		}
		outLines := strings.Split(strings.TrimSuffix(out.String(), "\n"), "\n")
		if out.Len() == 0 {
			outLines = nil
		}
		for _, ol := range outLines {
			var v any
			if err := json.Unmarshal([]byte(ol), &v); err != nil {
				t.Fatalf("output %q is not JSON: %v", ol, err)
			}
			resps, isArr := v.([]any)
			if !isArr {
				resps = []any{v}
			}
			for _, r := range resps {
				m, ok := r.(map[string]any)
				if !ok || m["jsonrpc"] != "2.0" {
					t.Fatalf("output %q is not a JSON-RPC object", ol)
				}
				_, hasRes := m["result"]
				_, hasErr := m["error"]
				_, hasID := m["id"]
				if hasRes == hasErr || !hasID {
					t.Fatalf("output %q: result %v, error %v, id %v", ol, hasRes, hasErr, hasID)
				}
			}
		}
		trimmed := bytes.TrimSpace([]byte(line))
		if len(trimmed) > 0 && trimmed[0] == '{' && json.Valid(trimmed) {
			var obj map[string]json.RawMessage
			json.Unmarshal(trimmed, &obj)
			if _, hasID := obj["id"]; hasID && len(outLines) != 1 {
				t.Fatalf("request %q got %d responses", line, len(outLines))
			}
		}
	})
}
