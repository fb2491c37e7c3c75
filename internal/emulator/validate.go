package emulator

import (
	"net/http"
	"regexp"
	"unicode/utf8"
)

var (
	executionARNPattern  = regexp.MustCompile(`^arn:aws[a-z\-]*:sagemaker:[a-z0-9\-]*:[0-9]{12}:pipeline\/.*\/execution\/.*$`)
	callbackTokenPattern = regexp.MustCompile(`^[a-zA-Z0-9]{10}$`)
	pipelineNamePattern  = regexp.MustCompile(`^[a-zA-Z0-9](-*[a-zA-Z0-9]){0,255}$`)
	accountPattern       = regexp.MustCompile(`^[0-9]{12}$`)
)

// validationError is SageMaker's ValidationException (HTTP 400).
func validationError(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "ValidationException", format, args...)
}

func notFound(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "ResourceNotFound", format, args...)
}

func conflict(format string, args ...any) *apiError {
	return errorf(http.StatusBadRequest, "ConflictException", format, args...)
}

// checkRequired answers ValidationException when v is empty.
func checkRequired(field, v string) *apiError {
	if v == "" {
		return validationError("1 validation error detected: Value null at '%s' failed to satisfy constraint: Member must not be null", lowerFirst(field))
	}
	return nil
}

// checkLen answers ValidationException when v has fewer than lo or more
// than hi characters.
func checkLen(field, v string, lo, hi int) *apiError {
	if n := utf8.RuneCountInString(v); n < lo || n > hi {
		return validationError("1 validation error detected: Value at '%s' failed to satisfy constraint: Member must have length between %d and %d", lowerFirst(field), lo, hi)
	}
	return nil
}

func checkPattern(field, v string, re *regexp.Regexp) *apiError {
	if !re.MatchString(v) {
		return validationError("1 validation error detected: Value '%s' at '%s' failed to satisfy constraint: Member must satisfy regular expression pattern: %s", v, lowerFirst(field), re.String())
	}
	return nil
}

// checkExecutionARN checks a required PipelineExecutionArn.
func checkExecutionARN(v string) *apiError {
	return firstError(
		checkRequired("PipelineExecutionArn", v),
		checkLen("PipelineExecutionArn", v, 0, 2048),
		checkPattern("PipelineExecutionArn", v, executionARNPattern),
	)
}

// checkClientToken checks a ClientRequestToken; required says whether an
// empty one is an error.
func checkClientToken(v string, required bool) *apiError {
	if v == "" && !required {
		return nil
	}
	return firstError(checkRequired("ClientRequestToken", v), checkLen("ClientRequestToken", v, 32, 128))
}

func firstError(errs ...*apiError) *apiError {
	for _, err := range errs {
		if err != nil {
			return err
		}
	}
	return nil
}

func lowerFirst(s string) string {
	if s == "" {
		return s
	}
	b := []byte(s)
	if b[0] >= 'A' && b[0] <= 'Z' {
		b[0] += 'a' - 'A'
	}
	return string(b)
}
