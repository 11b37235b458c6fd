package event

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"
)

// scanTargets returns a new value of each struct the scanner decodes into.
func scanTargets() []jsonFields {
	return []jsonFields{&Deployment{}, &Incident{}, &Patch{}, &Change{}, &cloudEvent{}, &cdEvent{}, &cdContext{},
		&cdSubject{}, &cdSubjectFields{}, &cdRef{}}
}

// TestScanFieldsMatchTags checks each struct's field table against its
// JSON tags: every tagged field, and only those, at its own index.
func TestScanFieldsMatchTags(t *testing.T) {
	for _, v := range scanTargets() {
		rv := reflect.ValueOf(v).Elem()
		var tags []string
		indexes := map[int]bool{}
		for i := range rv.NumField() {
			name, _, _ := strings.Cut(rv.Type().Field(i).Tag.Get("json"), ",")
			tags = append(tags, name)
			idx, dst := v.field([]byte(name))
			if dst == nil {
				t.Errorf("%s: field(%q) = nil", rv.Type(), name)
				continue
			}
			if p := reflect.ValueOf(dst); p.Pointer() != rv.Field(i).Addr().Pointer() || p.Elem().Kind() != rv.Field(i).Kind() {
				t.Errorf("%s: field(%q) is not the address of %s", rv.Type(), name, rv.Type().Field(i).Name)
			}
			if indexes[idx] || idx < 0 || idx >= 64 {
				t.Errorf("%s: field(%q) has index %d, taken or out of range", rv.Type(), name, idx)
			}
			indexes[idx] = true
		}
		if !reflect.DeepEqual(tags, v.names()) {
			t.Errorf("%s: names() = %q, the tags are %q", rv.Type(), v.names(), tags)
		}
		if _, dst := v.field([]byte("no_such_field")); dst != nil {
			t.Errorf("%s: field of an unknown name is not nil", rv.Type())
		}
	}
	// readNative reads the envelope and the kind's fields in one pass, which
	// is right only if no envelope name is a kind's field under folding.
	for _, k := range Kinds {
		_, target := newEvent(k)
		for _, n := range nativeEnvelope {
			if foldsToAny([]byte(n), target.(jsonFields).names()) {
				t.Errorf("envelope name %q folds to a field of %s", n, k)
			}
		}
	}
}

// TestScanAgreesWithJSON decodes each document into each struct with the
// scanner and with encoding/json: the scanner must give the same value or
// give up, and must not give up on a document marked common that
// encoding/json reads.
func TestScanAgreesWithJSON(t *testing.T) {
	cases := []struct {
		name, doc string
		common    bool // the scanner must read it wherever encoding/json does
	}{
		{"empty", `{}`, true},
		{"strings", `{"deployment_id":"d-1","service":"checkout","id":"x","type":"t","title":"a"}`, true},
		{"spaces", " \t\r\n{ \"service\" : \"a\" ,\n\"team\":\"b\" } \n", true},
		{"escapes", `{"service":"a\"b\\c\/d\b\f\n\r\t\u00e9\u20ac\ud83d\ude00","id":"\u0041"}`, true},
		{"lone surrogates", `{"service":"\ud83d x \ude00 \ud83d\u0041 \udc00\ud800"}`, true},
		{"non-ASCII", `{"service":"café ☕ 😀","title":"naïve"}`, true},
		{"unknown members of every type", `{"x":1,"y":[true,false,null,{"a":[]}],"z":-0.5e+3,"w":{"q":"r"},"service":"a"}`, true},
		{"null", `{"service":null,"changes":null,"started_at":null,"unplanned":null,"context":null,"data":null,"content":null}`, true},
		{"empty array", `{"changes":[]}`, true},
		{"array", `{"changes":["a","b\n"]}`, true},
		{"bools", `{"unplanned":true}`, true},
		{"times", `{"started_at":"2026-03-01T10:00:00Z","finished_at":"2026-03-01T12:00:00.123456789+02:00","detected_at":"2026-03-01T10:00:00.5-07:30"}`, true},
		{"nested", `{"context":{"id":"a","specversion":"0.5.1"},"subject":{"id":"s","content":{"environment":{"id":"prod"},"artifactId":"pkg:x"}},"customData":{"team":"t"}}`, true},
		{"raw data", `{"data":{"a":[1,2,{"b":null}]},"id":"x"}`, true},
		{"raw string data", `{"data":"hello"}`, true},

		{"DEL is not an underscore", "{\"deployment\x7fid\":\"a\",\"service\":\"b\"}", true},
		{"backquote is not an at sign", "{\"`\":\"a\",\"service\":\"b\"}", true},
		{"repeated key", `{"service":"a","service":"b"}`, false},
		{"repeated object", `{"context":{"id":"a"},"context":{"source":"b"}}`, false},
		{"key in capitals", `{"SERVICE":"a"}`, false},
		{"key in mixed case", `{"Service":"a","service":"b"}`, false},
		{"Kelvin sign", `{"\u212aind":"a","tas\u212a":"b"}`, false},
		{"Kelvin sign raw", "{\"ar\u212aifactId\":\"a\",\"artifactid\":\"b\"}", false},
		{"long s", "{\"\u017fervice\":\"a\"}", false},
		{"escaped key", `{"serv\u0069ce":"a"}`, false},
		{"escaped time", `{"started_at":"2026-03-01T10:00:00\u005a"}`, false},
		{"bad time", `{"started_at":"2026-03-01 10:00:00Z"}`, false},
		{"time out of range", `{"started_at":"2026-02-30T10:00:00Z"}`, false},
		{"number for a string", `{"service":7}`, false},
		{"object for a string", `{"service":{}}`, false},
		{"string for a bool", `{"unplanned":"yes"}`, false},
		{"null in an array", `{"changes":["a",null]}`, false},
		{"number in an array", `{"changes":[1]}`, false},
		{"string for an object", `{"context":"x","content":"y"}`, false},
		{"array for an object", `{"subject":[]}`, false},
		{"invalid UTF-8", "{\"service\":\"caf\xe9\"}", false},
		{"invalid UTF-8 in an unknown member", "{\"x\":\"caf\xe9\"}", false},
		{"control character", "{\"service\":\"a\tb\"}", false},
		{"bad escape", `{"service":"a\qb"}`, false},
		{"short unicode escape", `{"service":"a\u12"}`, false},
		{"form feed is not a space", "{\f\"service\":\"a\"}", false},
		{"trailing comma", `{"service":"a",}`, false},
		{"trailing data", `{"service":"a"} x`, false},
		{"two values", `{} {}`, false},
		{"not an object", `["service"]`, false},
		{"null document", `null`, false},
		{"leading zero", `{"x":01}`, false},
		{"bare minus", `{"x":-}`, false},
		{"dot without digits", `{"x":1.}`, false},
		{"exponent without digits", `{"x":1e}`, false},
		{"true misspelt", `{"x":tru}`, false},
		{"unclosed", `{"service":"a"`, false},
		{"unclosed string", `{"service":"a`, false},
		{"missing colon", `{"service" "a"}`, false},
		{"deep", `{"x":` + strings.Repeat(`[`, 100) + strings.Repeat(`]`, 100) + `}`, false},
	}
	for _, c := range cases {
		for _, v := range scanTargets() {
			ok := scanObject([]byte(c.doc), v)
			want := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			err := json.Unmarshal([]byte(c.doc), want)
			switch {
			case ok && err != nil:
				t.Errorf("%s into %T: the scanner read %q, which encoding/json refuses: %v", c.name, v, c.doc, err)
			case ok && !reflect.DeepEqual(v, want):
				t.Errorf("%s into %T: the scanner read %q as\n%+v\nencoding/json as\n%+v", c.name, v, c.doc, v, want)
			case !ok && c.common && err == nil:
				t.Errorf("%s into %T: the scanner gave up on %q", c.name, v, c.doc)
			}
		}
	}
}

// FuzzScan holds the scanner to encoding/json for each struct: what it
// reads, encoding/json reads too, and as the same value.
func FuzzScan(f *testing.F) {
	f.Add([]byte(`{"deployment_id":"d-1","changes":["a"],"unplanned":true,"started_at":"2026-03-01T10:00:00Z"}`))
	f.Add([]byte(`{"context":{"id":"a","specversion":"0.5.1"},"subject":{"id":"s","content":{"environment":{"id":"prod"}}},"customData":{"team":"t"}}`))
	f.Add([]byte(`{"specversion":"1.0","id":"x","source":"/s","type":"t","data":{"a":[1,2.5e3,null,true]},"data_base64":""}`))
	f.Add([]byte(`{"service":"a\u00e9\ud83d\ude00\\","SERVICE":"b"}`))
	f.Fuzz(func(t *testing.T, doc []byte) {
		for _, v := range scanTargets() {
			if !scanObject(doc, v) {
				continue
			}
			want := reflect.New(reflect.TypeOf(v).Elem()).Interface()
			if err := json.Unmarshal(doc, want); err != nil {
				t.Fatalf("into %T: the scanner read %q, which encoding/json refuses: %v", v, doc, err)
			}
			if !reflect.DeepEqual(v, want) {
				t.Fatalf("into %T: the scanner read %q as\n%+v\nencoding/json as\n%+v", v, doc, v, want)
			}
		}
	})
}
