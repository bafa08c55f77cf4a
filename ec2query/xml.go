package ec2query

import (
	"strconv"
	"unicode/utf8"
)

// xmlBuffer appends XML to a byte slice by hand: the response shape is fixed,
// so writing elements directly is simpler and much faster than reflection.
type xmlBuffer struct {
	b []byte
}

// open appends <name>.
func (x *xmlBuffer) open(name string) {
	x.b = append(x.b, '<')
	x.b = append(x.b, name...)
	x.b = append(x.b, '>')
}

// close appends </name>.
func (x *xmlBuffer) close(name string) {
	x.b = append(x.b, '<', '/')
	x.b = append(x.b, name...)
	x.b = append(x.b, '>')
}

// text appends <name>escaped s</name>.
func (x *xmlBuffer) text(name, s string) {
	x.open(name)
	x.b = appendEscaped(x.b, s)
	x.close(name)
}

// optText appends <name>*s</name> when s is set.
func (x *xmlBuffer) optText(name string, s *string) {
	if s != nil {
		x.text(name, *s)
	}
}

// optBool appends <name>true|false</name> when b is set.
func (x *xmlBuffer) optBool(name string, b *bool) {
	if b == nil {
		return
	}
	x.open(name)
	x.b = strconv.AppendBool(x.b, *b)
	x.close(name)
}

// optInt appends <name>n</name> when n is set.
func (x *xmlBuffer) optInt(name string, n *int32) {
	if n == nil {
		return
	}
	x.open(name)
	x.b = strconv.AppendInt(x.b, int64(*n), 10)
	x.close(name)
}

// stringList appends <name><item>s</item>...</name>, written even when
// empty, as EC2 writes its lists.
func (x *xmlBuffer) stringList(name string, items []string) {
	x.open(name)
	for _, s := range items {
		x.text("item", s)
	}
	x.close(name)
}

// plainASCII marks the bytes appendEscaped copies as they are: printable
// ASCII other than the five XML special characters. It is never written.
var plainASCII = func() (t [256]bool) {
	for c := 0x20; c < utf8.RuneSelf; c++ {
		t[c] = true
	}
	for _, c := range `&<>"'` {
		t[c] = false
	}
	return t
}()

// appendEscaped appends s as XML character data. The five special characters
// become entities, '\r' becomes a character reference (a parser would turn
// a raw one into '\n'), and what XML 1.0 cannot carry at all (invalid UTF-8,
// control characters other than tab and newline, U+FFFE, U+FFFF) becomes
// U+FFFD.
func appendEscaped(dst []byte, s string) []byte {
	last := 0
	for i := 0; i < len(s); {
		c := s[i]
		if plainASCII[c] {
			i++
			continue
		}
		var repl string
		width := 1
		switch c {
		case '&':
			repl = "&amp;"
		case '<':
			repl = "&lt;"
		case '>':
			repl = "&gt;"
		case '"':
			repl = "&quot;"
		case '\'':
			repl = "&apos;"
		case '\r':
			repl = "&#xD;"
		case '\t', '\n':
			i++
			continue
		default:
			if c < 0x20 {
				repl = "\uFFFD"
				break
			}
			r, w := utf8.DecodeRuneInString(s[i:])
			width = w
			if (r == utf8.RuneError && w == 1) || r == 0xFFFE || r == 0xFFFF {
				repl = "\uFFFD"
				break
			}
			i += w
			continue
		}
		dst = append(dst, s[last:i]...)
		dst = append(dst, repl...)
		i += width
		last = i
	}
	return append(dst, s[last:]...)
}
