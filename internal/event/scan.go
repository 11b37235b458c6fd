package event

// The scanner reads the JSON of well-formed events straight into the
// decoder's structs, without reflection and in one pass (two for a native
// event whose kind comes after some of its fields). It is a shortcut,
// never a second definition of the format: it takes a message only when it
// can tell that json.Unmarshal would give exactly the same value, and
// otherwise says so, and the decoder falls back to encoding/json, which
// also explains every rejection. It gives up on whatever is unusual: a
// string escape in a key or a timestamp, a key given twice, a key that
// matches a field only case-insensitively (encoding/json accepts those), a
// value of the wrong type, deep nesting. FuzzDecodeScanner holds it to
// encoding/json on every input the fuzzer finds.

import (
	"bytes"
	"encoding/json"
	"time"
	"unicode/utf16"
	"unicode/utf8"
)

// Test hooks: scanning is false in the tests and benchmarks that compare
// the scanner with encoding/json alone; gaveUp, when set, is called each
// time the scanner leaves a message it should read to encoding/json.
var (
	scanning = true
	gaveUp   func()
)

// scanned decodes the JSON object b into v with the scanner, or returns
// false for encoding/json to do it.
func scanned(b []byte, v jsonFields) bool {
	if !scanning {
		return false
	}
	if scanObject(b, v) {
		return true
	}
	if gaveUp != nil {
		gaveUp()
	}
	return false
}

// maxScanDepth is the deepest nesting the scanner reads; deeper documents
// are left to encoding/json (whose limit is 10,000).
const maxScanDepth = 64

// jsonFields is a struct the scanner decodes objects into. field returns
// the address of the field whose JSON name is exactly key, with a distinct
// index below 64 (so that a repeated key is noticed), or nil; names lists
// every JSON name, so that a key matching one only case-insensitively is
// noticed too. TestScanFieldsMatchTags holds both to the struct tags.
type jsonFields interface {
	field(key []byte) (int, any)
	names() []string
}

// scanObject decodes the JSON object b into v as json.Unmarshal(b, v) would,
// and reports whether it could. When it could not, v may hold some of the
// fields it read: callers start again from a new value, or (applyCustomData)
// let json.Unmarshal run over v, which then writes each of those fields
// again.
func scanObject(b []byte, v jsonFields) bool {
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return false
	}
	end, ok := scanFields(b, i, v, 1)
	return ok && skipSpace(b, end) == len(b)
}

// scanFields decodes the object at b[i] into v and returns the offset after
// it.
func scanFields(b []byte, i int, v jsonFields, depth int) (int, bool) {
	var seen uint64
	return scanMembers(b, i, depth, func(key []byte, j int) (int, bool) {
		idx, dst := v.field(key)
		if dst == nil {
			if foldsToAny(key, v.names()) {
				return 0, false
			}
			return skipValue(b, j, depth)
		}
		if seen&(1<<idx) != 0 {
			return 0, false
		}
		seen |= 1 << idx
		return scanValue(b, j, dst, depth)
	})
}

// scanMembers walks the object at b[i], calling member with each key (never
// holding an escape) and the offset of its value; member returns the
// offset after the value. It returns the offset after the object.
func scanMembers(b []byte, i, depth int, member func(key []byte, value int) (int, bool)) (int, bool) {
	if depth > maxScanDepth {
		return 0, false
	}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == '}' {
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false
		}
		key, esc, j, ok := scanString(b, i)
		if !ok || esc {
			return 0, false
		}
		j = skipSpace(b, j)
		if j >= len(b) || b[j] != ':' {
			return 0, false
		}
		if j, ok = member(key, skipSpace(b, j+1)); !ok {
			return 0, false
		}
		var done bool
		if i, done, ok = next(b, j, '}'); !ok || done {
			return i, ok
		}
	}
}

// next reads what follows a member or an element, at b[i]: the closing
// byte, and then done is true, or a comma; it returns the offset after it.
func next(b []byte, i int, closing byte) (int, bool, bool) {
	i = skipSpace(b, i)
	switch {
	case i >= len(b):
		return 0, false, false
	case b[i] == closing:
		return i + 1, true, true
	case b[i] == ',':
		return skipSpace(b, i+1), false, true
	}
	return 0, false, false
}

// foldsToAny reports whether key, which is none of names exactly, matches
// one of them as encoding/json matches keys to fields: case-insensitively,
// under Unicode simple folding.
func foldsToAny(key []byte, names []string) bool {
	for i := 0; i < len(key); i++ {
		if key[i] >= utf8.RuneSelf {
			for _, n := range names {
				if bytes.EqualFold(key, []byte(n)) {
					return true
				}
			}
			return false
		}
	}
	for _, n := range names {
		if len(n) == len(key) && asciiEqualFold(key, n) {
			return true
		}
	}
	return false
}

// asciiEqualFold compares ASCII strings of the same length, ignoring case.
func asciiEqualFold(a []byte, b string) bool {
	for i := 0; i < len(a); i++ {
		x, y := a[i]|0x20, b[i]|0x20
		if x != y || (x < 'a' || x > 'z') && a[i] != b[i] {
			return false
		}
	}
	return true
}

// scanValue decodes the value at b[i] into dst, one of the field types of
// the decoder's structs, and returns the offset after it. JSON null leaves
// dst as it is, or sets a slice or pointer to nil, as in encoding/json.
func scanValue(b []byte, i int, dst any, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	if b[i] == 'n' {
		end, ok := literal(b, i, "null")
		if ok {
			switch p := dst.(type) {
			case *[]string:
				*p = nil
			case **cdContext:
				*p = nil
			case **cdSubject:
				*p = nil
			case **cdRef:
				*p = nil
			case *json.RawMessage:
				*p = b[i:end]
			}
		}
		return end, ok
	}
	switch p := dst.(type) {
	case *string:
		s, esc, end, ok := scanString(b, i)
		if !ok {
			return 0, false
		}
		*p = unquote(s, esc)
		return end, true
	case *time.Time:
		// time.Time reads the raw string, without unescaping it.
		_, esc, end, ok := scanString(b, i)
		if !ok || esc || p.UnmarshalJSON(b[i:end]) != nil {
			return 0, false
		}
		return end, true
	case *bool:
		end, ok := literal(b, i, "true")
		if !ok {
			end, ok = literal(b, i, "false")
		}
		if ok {
			*p = b[i] == 't'
		}
		return end, ok
	case *[]string:
		return scanStrings(b, i, p, depth)
	case *json.RawMessage:
		end, ok := skipValue(b, i, depth)
		if ok {
			*p = b[i:end]
		}
		return end, ok
	case **cdContext:
		return scanNew(b, i, p, depth)
	case **cdSubject:
		return scanNew(b, i, p, depth)
	case **cdRef:
		return scanNew(b, i, p, depth)
	case jsonFields:
		if b[i] != '{' {
			return 0, false
		}
		return scanFields(b, i, p, depth+1)
	}
	return 0, false
}

// scanNew decodes the object at b[i] into a new T, as encoding/json does
// for a nil pointer field.
func scanNew[T any, PT interface {
	*T
	jsonFields
}](b []byte, i int, p *PT, depth int) (int, bool) {
	if b[i] != '{' {
		return 0, false
	}
	v := PT(new(T))
	end, ok := scanFields(b, i, v, depth+1)
	if ok {
		*p = v
	}
	return end, ok
}

// scanStrings decodes an array of strings. An empty array gives an empty,
// not a nil, slice, as in encoding/json.
func scanStrings(b []byte, i int, p *[]string, depth int) (int, bool) {
	if b[i] != '[' || depth+1 > maxScanDepth {
		return 0, false
	}
	out := []string{}
	i = skipSpace(b, i+1)
	if i < len(b) && b[i] == ']' {
		*p = out
		return i + 1, true
	}
	for {
		if i >= len(b) || b[i] != '"' {
			return 0, false // null elements, and anything but strings, are left to encoding/json
		}
		s, esc, end, ok := scanString(b, i)
		if !ok {
			return 0, false
		}
		out = append(out, unquote(s, esc))
		var done bool
		if i, done, ok = next(b, end, ']'); !ok {
			return 0, false
		} else if done {
			*p = out
			return i, true
		}
	}
}

// skipValue checks the JSON value at b[i] and returns the offset after it.
func skipValue(b []byte, i, depth int) (int, bool) {
	if i >= len(b) {
		return 0, false
	}
	switch c := b[i]; {
	case c == '"':
		_, _, end, ok := scanString(b, i)
		return end, ok
	case c == '{':
		return scanMembers(b, i, depth+1, func(_ []byte, j int) (int, bool) { return skipValue(b, j, depth+1) })
	case c == '[':
		if depth+1 > maxScanDepth {
			return 0, false
		}
		i = skipSpace(b, i+1)
		if i < len(b) && b[i] == ']' {
			return i + 1, true
		}
		for {
			end, ok := skipValue(b, i, depth+1)
			if !ok {
				return 0, false
			}
			var done bool
			if i, done, ok = next(b, end, ']'); !ok || done {
				return i, ok
			}
		}
	case c == 't':
		return literal(b, i, "true")
	case c == 'f':
		return literal(b, i, "false")
	case c == 'n':
		return literal(b, i, "null")
	case c == '-' || '0' <= c && c <= '9':
		return skipNumber(b, i)
	}
	return 0, false
}

func literal(b []byte, i int, lit string) (int, bool) {
	end := i + len(lit)
	if end > len(b) || string(b[i:end]) != lit {
		return 0, false
	}
	return end, true
}

// skipNumber checks a number against the JSON grammar:
// -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)?
func skipNumber(b []byte, i int) (int, bool) {
	digits := func(i int) int {
		for i < len(b) && '0' <= b[i] && b[i] <= '9' {
			i++
		}
		return i
	}
	if b[i] == '-' {
		i++
	}
	switch {
	case i < len(b) && b[i] == '0':
		i++
	case i < len(b) && '1' <= b[i] && b[i] <= '9':
		i = digits(i + 1)
	default:
		return 0, false
	}
	if i < len(b) && b[i] == '.' {
		j := digits(i + 1)
		if j == i+1 {
			return 0, false
		}
		i = j
	}
	if i < len(b) && (b[i] == 'e' || b[i] == 'E') {
		i++
		if i < len(b) && (b[i] == '+' || b[i] == '-') {
			i++
		}
		j := digits(i)
		if j == i {
			return 0, false
		}
		i = j
	}
	return i, true
}

func skipSpace(b []byte, i int) int {
	for i < len(b) {
		switch b[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// plain marks the bytes a JSON string holds as they are: not the quote,
// the backslash, a control character, or a byte of a multi-byte character.
var plain = func() (t [256]bool) {
	for c := ' '; c < utf8.RuneSelf; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// scanString checks the JSON string at b[i] (a quote) and returns what is
// between its quotes, whether that holds an escape, and the offset after
// the closing quote. A string that is not valid UTF-8 is refused:
// encoding/json would replace the bad bytes.
func scanString(b []byte, i int) (s []byte, esc bool, end int, ok bool) {
	if i >= len(b) || b[i] != '"' {
		return nil, false, 0, false
	}
	j, multi := i+1, false
	for {
		for j < len(b) && plain[b[j]] {
			j++
		}
		if j >= len(b) {
			return nil, false, 0, false
		}
		switch c := b[j]; {
		case c == '"':
			s = b[i+1 : j]
			if multi && !utf8.Valid(s) {
				return nil, false, 0, false
			}
			return s, esc, j + 1, true
		case c == '\\':
			esc = true
			if j+1 >= len(b) {
				return nil, false, 0, false
			}
			switch b[j+1] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				j += 2
			case 'u':
				if j+6 > len(b) || hex4(b[j+2:j+6]) < 0 {
					return nil, false, 0, false
				}
				j += 6
			default:
				return nil, false, 0, false
			}
		case c < ' ':
			return nil, false, 0, false
		default:
			multi = true
			j++
		}
	}
}

// hex4 reads four hex digits, or returns -1.
func hex4(b []byte) rune {
	var r rune
	for _, c := range b[:4] {
		switch {
		case '0' <= c && c <= '9':
			c -= '0'
		case 'a' <= c && c <= 'f':
			c = c - 'a' + 10
		case 'A' <= c && c <= 'F':
			c = c - 'A' + 10
		default:
			return -1
		}
		r = r<<4 | rune(c)
	}
	return r
}

// unquote returns the string that s, the checked contents of a JSON string,
// stands for, with escapes replaced as encoding/json replaces them (a
// surrogate that is not half of a pair becomes U+FFFD).
func unquote(s []byte, esc bool) string {
	if !esc {
		return string(s)
	}
	out := make([]byte, 0, len(s))
	for i := 0; i < len(s); {
		if s[i] != '\\' {
			out = append(out, s[i])
			i++
			continue
		}
		switch c := s[i+1]; c {
		case 'b':
			out = append(out, '\b')
		case 'f':
			out = append(out, '\f')
		case 'n':
			out = append(out, '\n')
		case 'r':
			out = append(out, '\r')
		case 't':
			out = append(out, '\t')
		case 'u':
			r := hex4(s[i+2:])
			i += 6
			if utf16.IsSurrogate(r) {
				if i+6 <= len(s) && s[i] == '\\' && s[i+1] == 'u' {
					if d := utf16.DecodeRune(r, hex4(s[i+2:])); d != utf8.RuneError {
						out = utf8.AppendRune(out, d)
						i += 6
						continue
					}
				}
				r = utf8.RuneError
			}
			out = utf8.AppendRune(out, r)
			continue
		default: // " \ /
			out = append(out, c)
		}
		i += 2
	}
	return string(out)
}

// nativeEnvelope are the names fastNative reads besides the kind's fields.
var nativeEnvelope = []string{"kind", "event_id", "time", "specversion", "context"}

// scanNative is fastNative through the scanner, plus shapeCloudEvent for a
// structured CloudEvent sent without its content-type, and shapeOther when
// fastNative is sure to give up; ok is false when the scanner cannot tell,
// and fastNative decides.
func scanNative(b []byte) (e *Event, sh shape, ok bool) {
	if !scanning {
		return nil, 0, false
	}
	if e, sh, ok = readNative(b); !ok && gaveUp != nil {
		gaveUp()
	}
	return e, sh, ok
}

func readNative(b []byte) (e *Event, sh shape, ok bool) {
	type member struct {
		key []byte
		at  int // offset of the value
	}
	var (
		early                []member // the kind's fields before kind, read once the kind is known
		buf                  [16]member
		kind, id, tm         []byte // values of kind, event_id and time, as in b
		kindEsc, idEsc       bool
		hasSpec, ctxIsObject bool
		seen                 uint8
		event                *Event     // the event, once kind is read
		fields               jsonFields // its payload
		seenField            uint64
	)
	// field decodes the value at b[j] into the kind's field named key.
	field := func(key []byte, j int) (int, bool) {
		idx, dst := fields.field(key)
		if dst == nil {
			if foldsToAny(key, fields.names()) {
				return 0, false
			}
			return skipValue(b, j, 1)
		}
		if seenField&(1<<idx) != 0 {
			return 0, false
		}
		seenField |= 1 << idx
		return scanValue(b, j, dst, 1)
	}
	i := skipSpace(b, 0)
	if i >= len(b) || b[i] != '{' {
		return nil, 0, false
	}
	early = buf[:0]
	end, ok := scanMembers(b, i, 1, func(key []byte, j int) (int, bool) {
		bit := envelopeBit(key)
		if bit == 0 {
			if foldsToAny(key, nativeEnvelope) {
				return 0, false
			}
			if fields != nil {
				return field(key, j)
			}
			early = append(early, member{key, j})
			return skipValue(b, j, 1)
		}
		end, ok := skipValue(b, j, 1)
		if !ok || seen&bit != 0 {
			return 0, false
		}
		seen |= bit
		switch bit {
		case 1:
			if kind, kindEsc, ok = envString(b, j); ok && !kindEsc {
				var payload any
				if event, payload = newEvent(nativeKind(kind)); event != nil {
					fields = payload.(jsonFields)
				}
			}
		case 2:
			id, idEsc, ok = envString(b, j)
		case 4:
			tm = b[j:end]
		case 8:
			hasSpec = true
		case 16:
			ctxIsObject = b[j] == '{'
		}
		return end, ok
	})
	if !ok || skipSpace(b, end) != len(b) {
		return nil, 0, false
	}
	if hasSpec {
		// The slow path finds specversion among the object's members.
		return nil, shapeCloudEvent, true
	}
	var t time.Time
	if tm != nil {
		if _, ok := scanValue(tm, 0, &t, 1); !ok {
			return nil, 0, false
		}
	}
	if len(kind) == 0 && ctxIsObject {
		return nil, shapeCDEvent, true
	}
	if len(id) == 0 || kindEsc {
		return nil, shapeOther, !kindEsc
	}
	if fields == nil {
		return nil, shapeOther, true // fastBody refuses any other kind
	}
	for _, m := range early {
		if _, ok := field(m.key, m.at); !ok {
			return nil, 0, false
		}
	}
	event.ID, event.Time, event.Encoding = unquote(id, idEsc), t, EncodingNative
	return event, shapeNative, true
}

// envelopeBit is the bit of readNative's seen for a member of the native
// envelope (kind, event_id, time, specversion, context), or 0.
func envelopeBit(key []byte) uint8 {
	switch string(key) {
	case "kind":
		return 1
	case "event_id":
		return 2
	case "time":
		return 4
	case "specversion":
		return 8
	case "context":
		return 16
	}
	return 0
}

// nativeKind is the kind named exactly k, or "".
func nativeKind(k []byte) Kind {
	for _, kind := range Kinds {
		if string(k) == string(kind) {
			return kind
		}
	}
	return ""
}

// envString reads a string or null of the native envelope; nil for null.
func envString(b []byte, i int) (s []byte, esc bool, ok bool) {
	if b[i] == 'n' {
		return nil, false, true
	}
	if b[i] != '"' {
		return nil, false, false
	}
	s, esc, _, ok = scanString(b, i)
	return s, esc, ok
}
