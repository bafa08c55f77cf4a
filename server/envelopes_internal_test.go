package server

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"slices"
	"testing"
)

// writeLog is a ResponseWriter that records each write and flush.
type writeLog struct {
	*httptest.ResponseRecorder
	writes []int // sizes; -1 for a flush
}

func (w *writeLog) Write(p []byte) (int, error) {
	w.writes = append(w.writes, len(p))
	return w.ResponseRecorder.Write(p)
}

func (w *writeLog) Flush() {
	w.writes = append(w.writes, -1)
	w.ResponseRecorder.Flush()
}

// TestWholeEnvelopesKeepsEveryByteInOrder drives wholeEnvelopes with the
// writes a handler may make: a prefix and its message become one write, a
// prefix flushed or left last still goes out, and a message larger than
// the join goes out as its head with the prefix, then the rest.
func TestWholeEnvelopesKeepsEveryByteInOrder(t *testing.T) {
	large := bytes.Repeat([]byte("0123456789abcdef"), 10_000) // 160,000 bytes
	for _, tc := range []struct {
		name   string
		writes [][]byte // nil: a flush
		want   []int
	}{
		{"prefix then message", [][]byte{[]byte("PPPPP"), []byte("message"), nil}, []int{12, -1}},
		{"prefix then flush", [][]byte{[]byte("PPPPP"), nil, []byte("message")}, []int{5, -1, 7}},
		{"prefix last", [][]byte{[]byte("hello "), []byte("PPPPP")}, []int{6, 5}},
		{"two envelopes", [][]byte{[]byte("PPPPP"), []byte("one"), nil, []byte("QQQQQ"), []byte("two"), nil}, []int{8, -1, 8, -1}},
		{"five-byte messages", [][]byte{[]byte("PPPPP"), []byte("12345"), nil}, []int{10, -1}},
		{"large message", [][]byte{[]byte("PPPPP"), large, nil}, []int{envelopePrefixLen + envelopeJoinMax, len(large) - envelopeJoinMax, -1}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &writeLog{ResponseRecorder: httptest.NewRecorder()}
			var want []byte
			h := wholeEnvelopes{next: http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
				for _, p := range tc.writes {
					if p == nil {
						w.(http.Flusher).Flush()
						continue
					}
					want = append(want, p...)
					if n, err := w.Write(p); n != len(p) || err != nil {
						t.Errorf("Write of %d bytes = %d, %v", len(p), n, err)
					}
				}
			})}
			h.ServeHTTP(rec, httptest.NewRequest(http.MethodPost, "/", nil))
			if got := rec.Body.Bytes(); !bytes.Equal(got, want) {
				t.Errorf("body: %d bytes, want the %d written in order", len(got), len(want))
			}
			if !slices.Equal(rec.writes, tc.want) {
				t.Errorf("writes and flushes %v, want %v", rec.writes, tc.want)
			}
		})
	}
}
