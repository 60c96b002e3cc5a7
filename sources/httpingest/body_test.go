package httpingest

import (
	"errors"
	"reflect"
	"testing"
)

func TestParseBody(t *testing.T) {
	cases := []struct {
		name    string
		ct      string
		body    string
		want    any
		wantErr string
		unsup   bool
	}{
		{name: "json object", ct: "application/json", body: `{"a":1,"b":[true,null,"x"]}`, want: map[string]any{"a": 1.0, "b": []any{true, nil, "x"}}},
		{name: "json with charset", ct: "application/json; charset=utf-8", body: `{"a":"é"}`, want: map[string]any{"a": "é"}},
		{name: "json top-level array", ct: "application/json", body: `[{"n":1},{"n":2}]`, want: []any{map[string]any{"n": 1.0}, map[string]any{"n": 2.0}}},
		{name: "json scalar", ct: "application/json", body: `"hi"`, want: "hi"},
		{name: "vendor json", ct: "application/vnd.github+json", body: `{"x":1}`, want: map[string]any{"x": 1.0}},
		{name: "json empty body", ct: "application/json", body: "", want: nil},
		{name: "json broken", ct: "application/json", body: `{"a":`, wantErr: "invalid json: unexpected end of JSON input"},
		{name: "json trailing data", ct: "application/json", body: `{"a":1} {"b":2}`, wantErr: "invalid json: invalid character '{' after top-level value"},
		{name: "form", ct: "application/x-www-form-urlencoded", body: "a=1&b=x+y&b=z&c=", want: map[string]any{"a": "1", "b": []any{"x y", "z"}, "c": ""}},
		{name: "form broken escape", ct: "application/x-www-form-urlencoded", body: "a=%zz", wantErr: `invalid form body: invalid URL escape "%zz"`},
		{name: "text", ct: "text/plain; charset=utf-8", body: "hello\nworld", want: "hello\nworld"},
		{name: "raw octet-stream", ct: "application/octet-stream", body: "\x00\x01bin", want: "\x00\x01bin"},
		{name: "no content type is raw", ct: "", body: `{"a":1}`, want: `{"a":1}`},
		{name: "xml", ct: "application/xml", body: `<a x="1"><b>2</b><b>3</b><c/></a>`, want: map[string]any{"a": map[string]any{"@x": "1", "b": []any{"2", "3"}, "c": ""}}},
		{name: "text xml", ct: "text/xml", body: `<a>hi</a>`, want: map[string]any{"a": "hi"}},
		{name: "xml broken", ct: "application/xml", body: `<a><b></a>`, wantErr: "invalid xml: XML syntax error on line 1: element <b> closed by </a>"},
		{name: "multipart unsupported", ct: "multipart/form-data; boundary=x", body: "--x", unsup: true},
		{name: "image unsupported", ct: "image/png", body: "\x89PNG", unsup: true},
		{name: "garbage content type", ct: "/;;", body: "x", unsup: true},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseBody(tc.ct, []byte(tc.body))
			switch {
			case tc.unsup:
				if !errors.Is(err, ErrUnsupportedMediaType) {
					t.Fatalf("err = %v, want ErrUnsupportedMediaType", err)
				}
			case tc.wantErr != "":
				if err == nil || err.Error() != tc.wantErr || errors.Is(err, ErrUnsupportedMediaType) {
					t.Fatalf("err = %v, want %q", err, tc.wantErr)
				}
			default:
				if err != nil {
					t.Fatal(err)
				}
				if !reflect.DeepEqual(got, tc.want) {
					t.Fatalf("got %#v, want %#v", got, tc.want)
				}
			}
		})
	}
}

func TestParseXML(t *testing.T) {
	cases := []struct {
		name string
		in   string
		want map[string]any
		err  string
	}{
		{
			name: "declaration, namespaces and comments ignored",
			in:   `<?xml version="1.0" encoding="UTF-8"?><!-- c --><n:alert xmlns:n="urn:x" n:id="7"><n:host>web1</n:host></n:alert>`,
			want: map[string]any{"alert": map[string]any{"@id": "7", "host": "web1"}},
		},
		{
			name: "mixed text kept as #text",
			in:   `<p lang="en">hello <b>big</b> world</p>`,
			want: map[string]any{"p": map[string]any{"@lang": "en", "b": "big", "#text": "hello  world"}},
		},
		{
			name: "text with attribute",
			in:   `<v unit="ms">12</v>`,
			want: map[string]any{"v": map[string]any{"@unit": "ms", "#text": "12"}},
		},
		{
			name: "three repeats stay one list in order",
			in:   `<r><i>1</i><j/><i>2</i><i><k>3</k></i></r>`,
			want: map[string]any{"r": map[string]any{"i": []any{"1", "2", map[string]any{"k": "3"}}, "j": ""}},
		},
		{name: "two roots", in: `<a/><b/>`, err: "invalid xml: more than one root element"},
		{name: "empty", in: `<?xml version="1.0"?>`, err: "invalid xml: no root element"},
		{name: "text outside root", in: `hello`, err: "invalid xml: text outside the root element"},
		{name: "latin1 refused", in: `<?xml version="1.0" encoding="ISO-8859-1"?><a/>`, err: `invalid xml: xml: opening charset "ISO-8859-1": charset "ISO-8859-1" is not supported`},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseXML([]byte(tc.in))
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %#v, want %#v", got, tc.want)
			}
		})
	}
}

func TestParseXMLDepthBounded(t *testing.T) {
	deep := ""
	for i := 0; i < maxXMLDepth+1; i++ {
		deep += "<a>"
	}
	if _, err := ParseXML([]byte(deep)); err == nil || err.Error() != "invalid xml: elements nested deeper than 256" {
		t.Fatalf("err = %v", err)
	}
}

// FuzzParseBody: no input may panic; a successful JSON parse must yield a
// value, and unsupported types must be reported as such.
func FuzzParseBody(f *testing.F) {
	seeds := []struct{ ct, body string }{
		{"application/json", `{"a":[1,2,{"b":null}]}`},
		{"application/json", `[1,2,3]`},
		{"application/x-www-form-urlencoded", "a=1&a=2&b=%20"},
		{"application/xml", `<a x="1"><b>t</b><b/>mixed</a>`},
		{"text/plain", "hello"},
		{"", "\x00\xff"},
		{"multipart/form-data", "x"},
	}
	for _, s := range seeds {
		f.Add(s.ct, []byte(s.body))
	}
	f.Fuzz(func(t *testing.T, ct string, body []byte) {
		v, err := ParseBody(ct, body)
		if err != nil {
			if v != nil {
				t.Fatalf("value %v with error %v", v, err)
			}
			return
		}
		if k, kerr := KindOf(ct); kerr == nil && (k == BodyText || k == BodyRaw) && len(body) > 0 && v != string(body) {
			t.Fatalf("text body changed: %q -> %v", body, v)
		}
	})
}

func FuzzParseXML(f *testing.F) {
	f.Add([]byte(`<a x="1"><b>t</b><b/>mixed<c><d/></c></a>`))
	f.Add([]byte(`<?xml version="1.0"?><r xmlns="urn:x"><i>1</i></r>`))
	f.Fuzz(func(t *testing.T, b []byte) {
		m, err := ParseXML(b)
		if err == nil && len(m) != 1 {
			t.Fatalf("root map has %d keys", len(m))
		}
	})
}
