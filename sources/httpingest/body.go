package httpingest

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/url"
	"strings"
)

// ErrUnsupportedMediaType is returned (wrapped) by ParseBody for a media type
// it cannot parse; an Endpoint answers 415.
var ErrUnsupportedMediaType = errors.New("unsupported content type")

// BodyKind is how ParseBody reads a body.
type BodyKind int

const (
	// BodyRaw: the bytes as a string (application/octet-stream, no type).
	BodyRaw BodyKind = iota
	// BodyText: text/*, as a string.
	BodyText
	// BodyJSON: JSON, objects, arrays and scalars.
	BodyJSON
	// BodyForm: application/x-www-form-urlencoded, as a map.
	BodyForm
	// BodyXML: XML, as a generic map (see ParseXML).
	BodyXML
)

// KindOf returns how a body of the given Content-Type is parsed. Parameters
// (charset) are ignored; the body is read as UTF-8. An empty content type is
// BodyRaw. Types that cannot be parsed (multipart, images, ...) return an
// error wrapping ErrUnsupportedMediaType.
func KindOf(contentType string) (BodyKind, error) {
	ct := strings.TrimSpace(contentType)
	if ct == "" {
		return BodyRaw, nil
	}
	mt, _, err := mime.ParseMediaType(ct)
	if err != nil {
		return 0, fmt.Errorf("%w %q", ErrUnsupportedMediaType, contentType)
	}
	switch {
	case mt == "application/json", mt == "text/json", strings.HasSuffix(mt, "+json"):
		return BodyJSON, nil
	case mt == "application/x-www-form-urlencoded":
		return BodyForm, nil
	case mt == "application/xml", mt == "text/xml", strings.HasSuffix(mt, "+xml"):
		return BodyXML, nil
	case strings.HasPrefix(mt, "text/"):
		return BodyText, nil
	case mt == "application/octet-stream":
		return BodyRaw, nil
	}
	return 0, fmt.Errorf("%w %q", ErrUnsupportedMediaType, mt)
}

// ParseBody turns a request body into a payload according to its
// Content-Type: JSON values as encoding/json decodes them (a top-level array
// stays an array), form bodies as a map of strings (a repeated field becomes
// a list), XML as described by ParseXML, text and raw bytes as a string. An
// empty body is a nil payload whatever the type. Errors wrap
// ErrUnsupportedMediaType (answer 415) or say why the body is unparseable
// (answer 400).
func ParseBody(contentType string, body []byte) (any, error) {
	kind, err := KindOf(contentType)
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 && kind != BodyText && kind != BodyRaw {
		return nil, nil
	}
	if len(body) == 0 {
		return nil, nil
	}
	switch kind {
	case BodyJSON:
		return parseJSON(body)
	case BodyForm:
		return parseForm(body)
	case BodyXML:
		m, err := ParseXML(body)
		if err != nil {
			return nil, err // not a nil map in a non-nil interface
		}
		return m, nil
	}
	return string(body), nil
}

func parseJSON(body []byte) (any, error) {
	var v any
	if err := json.Unmarshal(body, &v); err != nil {
		return nil, fmt.Errorf("invalid json: %v", err)
	}
	return v, nil
}

func parseForm(body []byte) (any, error) {
	vals, err := url.ParseQuery(string(body))
	if err != nil {
		return nil, fmt.Errorf("invalid form body: %v", err)
	}
	return ValuesMap(vals), nil
}

// ValuesMap turns url.Values (a query string, a form) into a map whose
// values are strings, or lists of strings for repeated keys.
func ValuesMap(vals url.Values) map[string]any {
	out := make(map[string]any, len(vals))
	for k, vs := range vals {
		switch len(vs) {
		case 0:
			out[k] = ""
		case 1:
			out[k] = vs[0]
		default:
			l := make([]any, len(vs))
			for i, v := range vs {
				l[i] = v
			}
			out[k] = l
		}
	}
	return out
}

// maxXMLDepth bounds element nesting so a hostile body cannot build a huge
// stack of open elements.
const maxXMLDepth = 256

// ParseXML turns an XML document into a generic map: the root element is the
// only key of the result; an element with neither attributes nor child
// elements is its text (a string, "" when empty); otherwise it is a map whose
// keys are child element names (a repeated child becomes a list, in document
// order), "@name" for attributes and "#text" for non-blank text. Names lose
// their namespace prefix. Comments, processing instructions and the
// declaration are ignored.
func ParseXML(body []byte) (map[string]any, error) {
	dec := xml.NewDecoder(bytes.NewReader(body))
	dec.CharsetReader = func(charset string, in io.Reader) (io.Reader, error) {
		switch strings.ToLower(charset) {
		case "utf-8", "utf8", "us-ascii", "ascii":
			return in, nil
		}
		return nil, fmt.Errorf("charset %q is not supported", charset)
	}
	type frame struct {
		name     string
		attrs    map[string]any
		children map[string]any
		text     strings.Builder
	}
	var stack []*frame
	var root map[string]any
	for {
		tok, err := dec.Token()
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, fmt.Errorf("invalid xml: %v", err)
		}
		switch t := tok.(type) {
		case xml.StartElement:
			if root != nil {
				return nil, errors.New("invalid xml: more than one root element")
			}
			if len(stack) >= maxXMLDepth {
				return nil, fmt.Errorf("invalid xml: elements nested deeper than %d", maxXMLDepth)
			}
			f := &frame{name: t.Name.Local}
			for _, a := range t.Attr {
				if a.Name.Space == "xmlns" || (a.Name.Space == "" && a.Name.Local == "xmlns") {
					continue
				}
				if f.attrs == nil {
					f.attrs = map[string]any{}
				}
				f.attrs["@"+a.Name.Local] = a.Value
			}
			stack = append(stack, f)
		case xml.CharData:
			if len(stack) > 0 {
				stack[len(stack)-1].text.Write(t)
			} else if len(bytes.TrimSpace(t)) > 0 {
				return nil, errors.New("invalid xml: text outside the root element")
			}
		case xml.EndElement:
			f := stack[len(stack)-1]
			stack = stack[:len(stack)-1]
			var v any
			text := f.text.String()
			if f.attrs == nil && f.children == nil {
				v = text
			} else {
				m := make(map[string]any, len(f.attrs)+len(f.children)+1)
				for k, a := range f.attrs {
					m[k] = a
				}
				for k, c := range f.children {
					m[k] = c
				}
				if s := strings.TrimSpace(text); s != "" {
					m["#text"] = s
				}
				v = m
			}
			if len(stack) == 0 {
				root = map[string]any{f.name: v}
				continue
			}
			p := stack[len(stack)-1]
			if p.children == nil {
				p.children = map[string]any{}
			}
			// Element values are strings or maps, never lists, so a list
			// here is always the one made for a repeated element.
			prev, seen := p.children[f.name]
			switch l := prev.(type) {
			case []any:
				p.children[f.name] = append(l, v)
			default:
				if seen {
					p.children[f.name] = []any{prev, v}
				} else {
					p.children[f.name] = v
				}
			}
		}
	}
	if root == nil {
		return nil, errors.New("invalid xml: no root element")
	}
	return root, nil
}
