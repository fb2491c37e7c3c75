// Command sqsfn is a Lambda function for the emulator's tests. It speaks
// the Lambda Runtime API with the standard library only. For each
// invocation it appends a JSON line to $EVENT_LOG (the headers, some of
// its environment and the raw event), then answers according to the
// bodies of the SQS records:
//
//	fail       reported in batchItemFailures
//	badid      an empty itemIdentifier
//	unknownid  an itemIdentifier that is no messageId
//	error      the invocation fails (POST .../error)
//	sleep      never answers (the function times out)
//	exit       the process exits with status 3
//	exit-once  exits the first time only (a marker file in $STATE_DIR)
//
// Any other body succeeds. An event that is not an SQS event is echoed.
// With INIT_FAIL=1 it posts an init error and exits.
package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"path/filepath"
	"time"
)

var api = "http://" + os.Getenv("AWS_LAMBDA_RUNTIME_API") + "/2018-06-01/runtime"

type record struct {
	MessageID string `json:"messageId"`
	Body      string `json:"body"`
}

func main() {
	if os.Getenv("INIT_FAIL") == "1" {
		post(api+"/init/error", []byte(`{"errorType":"Test.InitFailed","errorMessage":"init failed on purpose"}`))
		os.Exit(1)
	}
	fmt.Println("sqsfn started")
	for {
		resp, err := http.Get(api + "/invocation/next")
		if err != nil {
			fmt.Fprintln(os.Stderr, "next:", err)
			os.Exit(2)
		}
		event, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		if resp.StatusCode != http.StatusOK {
			fmt.Fprintln(os.Stderr, "next: status", resp.StatusCode)
			os.Exit(2)
		}
		id := resp.Header.Get("Lambda-Runtime-Aws-Request-Id")
		logEvent(resp.Header, event)
		out, failed := handle(event)
		if failed != "" {
			post(api+"/invocation/"+id+"/error", []byte(`{"errorType":"Test.Failed","errorMessage":"`+failed+`"}`))
			continue
		}
		post(api+"/invocation/"+id+"/response", out)
	}
}

func handle(event []byte) ([]byte, string) {
	var ev struct{ Records []record }
	if json.Unmarshal(event, &ev) != nil || ev.Records == nil {
		return event, ""
	}
	type item struct {
		ItemIdentifier string `json:"itemIdentifier"`
	}
	failures := []item{}
	for _, r := range ev.Records {
		switch r.Body {
		case "fail":
			failures = append(failures, item{r.MessageID})
		case "badid":
			failures = append(failures, item{""})
		case "unknownid":
			failures = append(failures, item{"no-such-message"})
		case "error":
			return nil, "error requested by " + r.MessageID
		case "sleep":
			time.Sleep(time.Hour)
		case "exit":
			os.Exit(3)
		case "exit-once":
			marker := filepath.Join(os.Getenv("STATE_DIR"), "exited")
			if _, err := os.Stat(marker); err != nil {
				_ = os.WriteFile(marker, nil, 0o600)
				os.Exit(3)
			}
		}
	}
	out, _ := json.Marshal(map[string]any{"batchItemFailures": failures})
	return out, ""
}

func logEvent(h http.Header, event []byte) {
	env := map[string]string{}
	for _, k := range []string{"AWS_LAMBDA_FUNCTION_NAME", "_HANDLER", "AWS_REGION", "AWS_DEFAULT_REGION",
		"AWS_ENDPOINT_URL", "AWS_ACCESS_KEY_ID", "AWS_SECRET_ACCESS_KEY", "AWS_LAMBDA_FUNCTION_TIMEOUT",
		"AWS_LAMBDA_FUNCTION_MEMORY_SIZE", "AWS_LAMBDA_FUNCTION_VERSION", "AWS_LAMBDA_RUNTIME_API", "HOME", "EXTRA"} {
		env[k] = os.Getenv(k)
	}
	line, _ := json.Marshal(map[string]any{
		"pid":         os.Getpid(),
		"requestId":   h.Get("Lambda-Runtime-Aws-Request-Id"),
		"deadlineMs":  h.Get("Lambda-Runtime-Deadline-Ms"),
		"functionArn": h.Get("Lambda-Runtime-Invoked-Function-Arn"),
		"traceId":     h.Get("Lambda-Runtime-Trace-Id"),
		"env":         env,
		"event":       json.RawMessage(event),
	})
	f, err := os.OpenFile(os.Getenv("EVENT_LOG"), os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o600)
	if err != nil {
		fmt.Fprintln(os.Stderr, "event log:", err)
		return
	}
	defer f.Close()
	_, _ = f.Write(append(line, '\n'))
}

func post(url string, body []byte) {
	resp, err := http.Post(url, "application/json", bytes.NewReader(body))
	if err != nil {
		fmt.Fprintln(os.Stderr, "post:", err)
		return
	}
	resp.Body.Close()
}
