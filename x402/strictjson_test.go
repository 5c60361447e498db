package x402

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"strings"
	"testing"
	"unicode/utf8"
)

func TestCheckStrictJSON(t *testing.T) {
	good := []string{
		`{}`, `[]`, `0`, `-0.5e+10`, `"x"`, `true`, ` null `, `{"a":[1,{"b":"\u00e9\n"}],"c":false}`,
		`{"a":1,"b":{"a":2}}`, // the same key in different objects
		`{"k":1,"K\u0301":2}`, // different after folding
		`[{"a":1},{"a":1}]`,   // the same key in sibling objects
		strings.Repeat("[", 32) + strings.Repeat("]", 32),
		`{` + manyKeys(40, "") + `}`,
	}
	for _, in := range good {
		if err := CheckStrictJSON([]byte(in)); err != nil {
			t.Errorf("%q refused: %v", in, err)
		}
	}
	bad := map[string]string{
		"empty":                ``,
		"trailing value":       `{} {}`,
		"trailing comma":       `{"a":1,}`,
		"leading zero":         `01`,
		"bare dot":             `1.`,
		"bad exponent":         `1e`,
		"single quotes":        `{'a':1}`,
		"unquoted key":         `{a:1}`,
		"control char":         "\"a\tb\"",
		"bad escape":           `"\x"`,
		"short unicode escape": `"\u12"`,
		"unterminated":         `"abc`,
		"invalid utf-8":        "\"\xff\"",
		"duplicate":            `{"a":1,"a":2}`,
		"case duplicate":       `{"amount":"1","Amount":"2"}`,
		"escaped duplicate":    `{"a":1,"\u0061":2}`,
		"kelvin duplicate":     `{"k":1,"` + "\u212a" + `":2}`,
		"long-s duplicate":     `{"s":1,"` + "\u017f" + `":2}`,
		"duplicate after many": `{` + manyKeys(40, ",") + `"KB1":1}`,
		"nested duplicate":     `{"a":{"b":1,"B":2}}`,
		"too deep":             strings.Repeat("[", 33) + strings.Repeat("]", 33),
		"unclosed":             `{"a":[1,2}`,
		"missing colon":        `{"a" 1}`,
		"truncated literal":    `tru`,
	}
	for name, in := range bad {
		err := CheckStrictJSON([]byte(in))
		if !errors.Is(err, ErrBadJSON) {
			t.Errorf("%s: %q accepted or wrong error: %v", name, in, err)
		}
	}
}

func manyKeys(n int, trailing string) string {
	var b strings.Builder
	for i := range n {
		if i > 0 {
			b.WriteByte(',')
		}
		b.WriteString(`"k` + string(rune('a'+i%26)) + string(rune('0'+i/26)) + `":` + "1")
	}
	b.WriteString(trailing)
	return b.String()
}

func TestObjectMembers(t *testing.T) {
	ms, err := ObjectMembers([]byte(` { "type" : "voucher", "n":[1, {"x":null}] ,"s\u00e9":"\"q\"" } `))
	if err != nil {
		t.Fatal(err)
	}
	want := []Member{{"type", json.RawMessage(`"voucher"`)}, {"n", json.RawMessage(`[1, {"x":null}]`)}, {"sé", json.RawMessage(`"\"q\""`)}}
	if len(ms) != len(want) {
		t.Fatalf("got %d members, want %d: %+v", len(ms), len(want), ms)
	}
	for i := range want {
		if ms[i].Key != want[i].Key || !bytes.Equal(ms[i].Value, want[i].Value) {
			t.Errorf("member %d = %q:%s, want %q:%s", i, ms[i].Key, ms[i].Value, want[i].Key, want[i].Value)
		}
	}
	sameMembers(t, []byte(` { "type" : "voucher", "n":[1, {"x":null}] ,"s\u00e9":"\"q\"" } `), ms)
	sameMembers(t, []byte(`{"a":-1.5e3,"b":true,"c":"}","d":{"e":["]",{}]},"f":null}`), must(ObjectMembers([]byte(`{"a":-1.5e3,"b":true,"c":"}","d":{"e":["]",{}]},"f":null}`))))
	for _, in := range []string{`{"a":"x`, `{"a":"\`, `{"a":[1,{"b":"`, `{"a`, `{"a"`, `{"a" 1`} { // unchecked: no panic
		CheckedObjectMembers([]byte(in))
	}
	if ms, err := ObjectMembers([]byte(`{}`)); err != nil || len(ms) != 0 {
		t.Fatalf("empty object: %v %v", ms, err)
	}
	for _, in := range []string{`[]`, `"x"`, `{"a":1,"A":2}`, `{`} {
		if _, err := ObjectMembers([]byte(in)); !errors.Is(err, ErrBadJSON) {
			t.Errorf("%q: %v", in, err)
		}
	}
}

// referenceStrict is the slow, obviously right statement of the rules, on encoding/json's token
// stream; the fuzz test holds CheckStrictJSON to it.
func referenceStrict(raw []byte) bool {
	if !json.Valid(raw) || !utf8.Valid(raw) {
		return false
	}
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.UseNumber()
	type frame struct {
		object, expectKey bool
		keys              []string
	}
	var stack []*frame
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			return true
		}
		if err != nil {
			return false
		}
		var top *frame
		if len(stack) > 0 {
			top = stack[len(stack)-1]
		}
		if key, ok := tok.(string); ok && top != nil && top.object && top.expectKey {
			for _, k := range top.keys {
				if strings.EqualFold(k, key) {
					return false
				}
			}
			top.keys = append(top.keys, key)
			top.expectKey = false
			continue
		}
		if d, ok := tok.(json.Delim); ok {
			switch d {
			case '{', '[':
				if len(stack) >= maxJSONDepth {
					return false
				}
				if top != nil && top.object {
					top.expectKey = true
				}
				stack = append(stack, &frame{object: d == '{', expectKey: d == '{'})
			case '}', ']':
				stack = stack[:len(stack)-1]
			}
			continue
		}
		if top != nil && top.object {
			top.expectKey = true
		}
	}
}

func FuzzCheckStrictJSON(f *testing.F) {
	for _, s := range []string{`{"a":1}`, `{"a":1,"A":2}`, `[1,2,{"b":[true,false,null]}]`, `"\u00e9"`, `-1.5e3`,
		`{"a":{"b":{"c":"d"}},"e":"\ud800"}`, "\"\xff\"", `{"k":1,"` + "\u212a" + `":2}`} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		_, _ = CheckedObjectMembers(raw) // meaningless on unchecked bytes, but must not panic
		got := CheckStrictJSON(raw) == nil
		want := referenceStrict(raw)
		// The reference sees keys after encoding/json's decoding, which turns lone surrogate
		// escapes into U+FFFD exactly as CheckStrictJSON does, so the two agree everywhere.
		if got != want {
			t.Fatalf("CheckStrictJSON(%q) ok=%v, reference ok=%v", raw, got, want)
		}
		if !got {
			return
		}
		ms, err := ObjectMembers(raw)
		if isObject := bytes.HasPrefix(bytes.TrimLeft(raw, " \t\r\n"), []byte("{")); isObject != (err == nil) {
			t.Fatalf("ObjectMembers(%q): %v", raw, err)
		}
		if err != nil {
			return
		}
		sameMembers(t, raw, ms)
		for _, m := range ms {
			if CheckStrictJSON(m.Value) != nil {
				t.Fatalf("member %q value %q is not strict JSON", m.Key, m.Value)
			}
			if inner, err := ObjectMembers(m.Value); err == nil {
				sameMembers(t, m.Value, inner)
			}
		}
	})
}

// sameMembers holds CheckedObjectMembers to what ObjectMembers found in checked bytes.
func sameMembers(t *testing.T, raw []byte, want []Member) {
	t.Helper()
	got, err := CheckedObjectMembers(raw)
	if err != nil || len(got) != len(want) {
		t.Fatalf("CheckedObjectMembers(%q) = %d members, %v; want %d", raw, len(got), err, len(want))
	}
	for i := range want {
		if got[i].Key != want[i].Key || !bytes.Equal(got[i].Value, want[i].Value) {
			t.Fatalf("CheckedObjectMembers(%q) member %d = %q:%q, want %q:%q", raw, i, got[i].Key, got[i].Value, want[i].Key, want[i].Value)
		}
	}
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
