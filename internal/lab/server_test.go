package lab

import "testing"

func TestIsHTTP(t *testing.T) {
	for in, want := range map[string]bool{
		"GET / HTTP/1.1\r\n": true, "POST /api": true, "DELETE /x": true, "GET ": true, "GET": false,
		"": false, "rampart": false, "\x16\x03\x01\x02\x00": false, "SSH-2.0-": false, "get / HTTP/1.1": false,
	} {
		if got := isHTTP([]byte(in)); got != want {
			t.Errorf("isHTTP(%q) = %v, want %v", in, got, want)
		}
	}
}
