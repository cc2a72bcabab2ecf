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
	bad, err := bindAll(c, dst)
	if err != nil {
		return err
	}
	if len(bad) > 0 {
		return validation(bad)
	}
	return nil
}

// bindAll is bind for a handler that validates more: it decodes every field
// it can and returns the problems of the others (unknown fields, values of
// the wrong type), which the handler names in the same 400 as its own, so a
// client learns everything wrong with a request at once. A body that is
// not a JSON object is an error of its own.
func bindAll(c echo.Context, dst any) (map[string]string, error) {
	body, err := io.ReadAll(c.Request().Body)
	if err != nil {
		var he *echo.HTTPError
		if errors.As(err, &he) && he.Code == 413 {
			return nil, apiError(413, "body_too_large", "request body over 64 KiB")
		}
		return nil, apiError(400, "invalid_body", "could not read request body")
	}
	if len(bytes.TrimSpace(body)) == 0 {
		body = []byte("{}")
	}
	var fields map[string]json.RawMessage
	if err := json.Unmarshal(body, &fields); err != nil {
		return nil, apiError(400, "invalid_json", "request body must be a JSON object: "+err.Error())
	}
	v := reflect.ValueOf(dst).Elem()
	byName := jsonFieldIndex(v.Type())
	bad := map[string]string{}
	for name, raw := range fields {
		i, ok := byName[name]
		if !ok {
			bad[name] = "unknown field"
			continue
		}
		if err := json.Unmarshal(raw, v.Field(i).Addr().Interface()); err != nil {
			var te *json.UnmarshalTypeError
			if errors.As(err, &te) {
				bad[name] = "must be " + jsonKind(te.Type)
			} else {
				bad[name] = "malformed: " + err.Error()
			}
			v.Field(i).SetZero()
		}
	}
	return bad, nil
}

// merge adds the problems of bindAll to a handler's: the decoding's win, as
// a field that could not be decoded says nothing else.
func merge(details, bad map[string]string) map[string]string {
	for k, p := range bad {
		details[k] = p
	}
	return details
}

// jsonFieldIndex maps the JSON names of a struct's fields to their index.
func jsonFieldIndex(t reflect.Type) map[string]int {
	out := map[string]int{}
	for i := 0; i < t.NumField(); i++ {
		name, _, _ := strings.Cut(t.Field(i).Tag.Get("json"), ",")
		if name != "" && name != "-" {
			out[name] = i
		}
	}
	return out
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
