// Package jsonv checks that bytes are one JSON value, exactly as
// encoding/json.Valid does (same grammar, same nesting limit, no UTF-8
// check), several times faster: the session stores check every document
// and message before sending it, and encoding/json's byte-at-a-time
// scanner was about 40% of a 4 KiB Save's client CPU (issue 13).
package jsonv

// maxDepth is encoding/json's nesting limit (maxNestingDepth): a value
// nested deeper is not valid.
const maxDepth = 10000

// plain marks the bytes a JSON string may hold without an escape: not a
// quote, not a backslash, not a control character.
var plain = func() (t [256]bool) {
	for c := 0x20; c < 256; c++ {
		t[c] = c != '"' && c != '\\'
	}
	return t
}()

// Valid reports whether data is exactly one JSON value with optional
// surrounding whitespace, with the result of encoding/json.Valid.
func Valid(data []byte) bool {
	// stack holds, per open container, '{' or '['.
	var small [64]byte
	stack := small[:0]
	i := skipSpace(data, 0)
	for {
		// A value starts at i.
		if i >= len(data) {
			return false
		}
		switch c := data[i]; {
		case c == '{' || c == '[':
			if len(stack) >= maxDepth {
				return false
			}
			stack = append(stack, c)
			i = skipSpace(data, i+1)
			if i < len(data) && data[i] == c+2 { // '}' or ']': empty
				i++
				stack = stack[:len(stack)-1]
				break
			}
			if c == '{' {
				var ok bool
				if i, ok = key(data, i); !ok {
					return false
				}
			}
			continue
		case c == '"':
			var ok bool
			if i, ok = str(data, i); !ok {
				return false
			}
		case c == '-' || (c >= '0' && c <= '9'):
			var ok bool
			if i, ok = number(data, i); !ok {
				return false
			}
		case c == 't':
			if !lit(data, i, "true") {
				return false
			}
			i += 4
		case c == 'f':
			if !lit(data, i, "false") {
				return false
			}
			i += 5
		case c == 'n':
			if !lit(data, i, "null") {
				return false
			}
			i += 4
		default:
			return false
		}
		// A value ended at i: close containers, or find the next value.
		for {
			i = skipSpace(data, i)
			if len(stack) == 0 {
				return i == len(data)
			}
			if i >= len(data) {
				return false
			}
			top := stack[len(stack)-1]
			if data[i] == top+2 {
				stack = stack[:len(stack)-1]
				i++
				continue
			}
			if data[i] != ',' {
				return false
			}
			i = skipSpace(data, i+1)
			if top == '{' {
				var ok bool
				if i, ok = key(data, i); !ok {
					return false
				}
			}
			break
		}
	}
}

// key reads `"name" :` and whitespace from i; it returns where the value
// starts.
func key(data []byte, i int) (int, bool) {
	if i >= len(data) || data[i] != '"' {
		return i, false
	}
	i, ok := str(data, i)
	if !ok {
		return i, false
	}
	i = skipSpace(data, i)
	if i >= len(data) || data[i] != ':' {
		return i, false
	}
	return skipSpace(data, i+1), true
}

func skipSpace(data []byte, i int) int {
	for i < len(data) {
		switch data[i] {
		case ' ', '\t', '\n', '\r':
			i++
		default:
			return i
		}
	}
	return i
}

// str reads the string starting at data[i] == '"'; it returns the index
// after the closing quote.
func str(data []byte, i int) (int, bool) {
	i++
	for {
		for i < len(data) && plain[data[i]] {
			i++
		}
		if i >= len(data) {
			return i, false
		}
		switch data[i] {
		case '"':
			return i + 1, true
		case '\\':
			i++
			if i >= len(data) {
				return i, false
			}
			switch data[i] {
			case '"', '\\', '/', 'b', 'f', 'n', 'r', 't':
				i++
			case 'u':
				if i+4 >= len(data) {
					return i, false
				}
				for _, h := range data[i+1 : i+5] {
					if !isHex(h) {
						return i, false
					}
				}
				i += 5
			default:
				return i, false
			}
		default: // a control character
			return i, false
		}
	}
}

func isHex(c byte) bool {
	return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'f') || (c >= 'A' && c <= 'F')
}

// number reads -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? from i.
func number(data []byte, i int) (int, bool) {
	if data[i] == '-' {
		i++
	}
	switch {
	case i >= len(data):
		return i, false
	case data[i] == '0':
		i++
	case data[i] >= '1' && data[i] <= '9':
		i = digits(data, i+1)
	default:
		return i, false
	}
	if i < len(data) && data[i] == '.' {
		j := digits(data, i+1)
		if j == i+1 {
			return i, false
		}
		i = j
	}
	if i < len(data) && (data[i] == 'e' || data[i] == 'E') {
		i++
		if i < len(data) && (data[i] == '+' || data[i] == '-') {
			i++
		}
		j := digits(data, i)
		if j == i {
			return i, false
		}
		i = j
	}
	return i, true
}

func digits(data []byte, i int) int {
	for i < len(data) && data[i] >= '0' && data[i] <= '9' {
		i++
	}
	return i
}

func lit(data []byte, i int, word string) bool {
	return len(data)-i >= len(word) && string(data[i:i+len(word)]) == word
}
