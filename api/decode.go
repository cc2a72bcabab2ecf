package api

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"reflect"
	"strings"

	"github.com/labstack/echo/v4"
)

// bind decodes the JSON body into dst strictly: malformed JSON, fields dst
// does not have, values of the wrong type and trailing data are all a 400
// naming what is wrong, so nothing the client did not mean is accepted.
func bind(c echo.Context, dst any) error {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) && he.Code == 413 {
			return apiError(413, "body_too_large", "request body over 64 KiB")
		}
		return apiError(400, "invalid_body", "could not read request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return apiError(400, "invalid_json", "request body must be a JSON object: "+err.Error())
	}
	allowed := jsonFields(dst)
	details := map[string]string{}
	for name := range fields {
		if !allowed[name] {
			details[name] = "unknown field"
		}
	}
	if len(details) > 0 {
		return validation(details)
	}
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(dst); err != nil {
		var te *json.UnmarshalTypeError
		if errors.As(err, &te) {
			field := te.Field
			if field == "" {
				field = "body"
			}
			return validation(map[string]string{field: "must be " + jsonKind(te.Type)})
		}
		return apiError(400, "invalid_json", "malformed JSON: "+err.Error())
	}
	return nil
}

func jsonKind(t reflect.Type) string {
	switch t.Kind() {
	case reflect.String:
		return "a string"
	case reflect.Int, reflect.Int64, reflect.Int32:
		return "an integer"
	case reflect.Slice:
		return "an array"
	case reflect.Bool:
		return "a boolean"
	}
	return "a " + t.Kind().String()
}

func jsonFields(v any) map[string]bool {
	t := reflect.TypeOf(v)
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	out := map[string]bool{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = true
		}
	}
	return out
}
