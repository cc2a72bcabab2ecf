package vultrfake

import (
	"net/http"
	"strings"
	"testing"
)

// The fake's own answers are checked too: a body that breaks the document
// is reported.
func TestCheckResponseRejectsAnAnswerThatBreaksTheDocument(t *testing.T) {
	v, err := loadValidator()
	if err != nil {
		t.Fatal(err)
	}
	req, _ := http.NewRequest(http.MethodGet, "http://fake/v2/instances/abc", nil)
	req.Header.Set("Authorization", "Bearer k")
	route, params, err := v.route(req)
	if err != nil {
		t.Fatal(err)
	}
	in, _, err := v.checkRequest(req, nil, route, params)
	if err != nil {
		t.Fatal(err)
	}
	h := http.Header{"Content-Type": {"application/json"}}
	if err := v.checkResponse(in, 200, h, []byte(`{"instance":{"id":"abc","ram":1024}}`)); err != nil {
		t.Fatalf("a good answer: %v", err)
	}
	if err := v.checkResponse(in, 200, h, []byte(`{"instance":{"id":"abc","ram":"lots"}}`)); err == nil {
		t.Fatal("ram as a string passed")
	}
	if err := v.checkResponse(in, 418, h, []byte(`{"error":"teapot"}`)); err == nil || !strings.Contains(err.Error(), "418") {
		t.Fatalf("an undocumented status: %v", err)
	}
	if err := v.checkResponse(in, 500, h, []byte(`oops`)); err == nil {
		t.Fatal("a 500 that is not an error object passed")
	}
	if err := v.checkResponse(in, 404, h, []byte(`{"error":"Invalid instance-id.","status":404}`)); err != nil {
		t.Fatalf("a 404: %v", err)
	}
}
