package emulator

import (
	"encoding/base64"
	"encoding/json"
	"fmt"
	"slices"
	"strings"
)

// defaultPageSize is the MaxResults used when a list call sets none.
const defaultPageSize = 50

// pageInput holds the paging members every SageMaker list call shares.
type pageInput struct {
	MaxResults *int
	NextToken  string
	SortOrder  string
}

// check validates MaxResults and SortOrder.
func (in pageInput) check() *apiError {
	if in.MaxResults != nil && (*in.MaxResults < 1 || *in.MaxResults > 100) {
		return validationError("1 validation error detected: Value '%d' at 'maxResults' failed to satisfy constraint: Member must have value between 1 and 100", *in.MaxResults)
	}
	if in.SortOrder != "" && in.SortOrder != "Ascending" && in.SortOrder != "Descending" {
		return validationError("1 validation error detected: Value '%s' at 'sortOrder' failed to satisfy constraint: Member must satisfy enum value set: [Ascending, Descending]", in.SortOrder)
	}
	return nil
}

// cursor is what a NextToken carries: the list it pages, its order and the
// sort key of the last item returned. The next page holds the items whose
// key comes after it in that order, so an item added between two pages
// never makes another appear twice or not at all.
type cursor struct {
	List  string `json:"l"`
	Order string `json:"o"`
	Key   string `json:"k"`
}

func (c cursor) encode() string {
	buf, _ := json.Marshal(c) // strings only
	return base64.RawURLEncoding.EncodeToString(buf)
}

// keyed is one listed item with its unique sort key.
type keyed[T any] struct {
	key  string
	item T
}

// paginate sorts items by key in the requested order (newest, or highest
// key, first unless SortOrder is Ascending) and returns the page after
// the request's NextToken with the next token ("" on the last page). list
// names what is paged (a token of another list, or of the same list in
// another order, is invalid). Callers ran check.
func paginate[T any](in pageInput, list string, items []keyed[T]) ([]T, string, *apiError) {
	order := "Descending"
	if in.SortOrder == "Ascending" {
		order = "Ascending"
	}
	sorted := slices.Clone(items)
	slices.SortFunc(sorted, func(a, b keyed[T]) int {
		c := strings.Compare(a.key, b.key)
		if order == "Descending" {
			c = -c
		}
		return c
	})
	lo := 0
	if in.NextToken != "" {
		var c cursor
		raw, err := base64.RawURLEncoding.DecodeString(in.NextToken)
		if err == nil {
			err = json.Unmarshal(raw, &c)
		}
		if err != nil || c.List != list || c.Order != order {
			return nil, "", validationError("Invalid pagination token %q", in.NextToken)
		}
		lo = len(sorted)
		for i, it := range sorted {
			if (order == "Ascending" && it.key > c.Key) || (order == "Descending" && it.key < c.Key) {
				lo = i
				break
			}
		}
	}
	size := defaultPageSize
	if in.MaxResults != nil {
		size = *in.MaxResults
	}
	hi := min(lo+size, len(sorted))
	out := make([]T, 0, hi-lo)
	for _, it := range sorted[lo:hi] {
		out = append(out, it.item)
	}
	next := ""
	if hi < len(sorted) {
		next = cursor{List: list, Order: order, Key: sorted[hi-1].key}.encode()
	}
	return out, next, nil
}

// paginateAs is paginate followed by describe on each item of the page: the
// answer's members for one listed item. The page is never nil, so that an
// empty list is [] on the wire, not null.
func paginateAs[T, S any](in pageInput, list string, items []keyed[T], describe func(T) S) ([]S, string, *apiError) {
	page, next, err := paginate(in, list, items)
	if err != nil {
		return nil, "", err
	}
	out := make([]S, 0, len(page))
	for _, it := range page {
		out = append(out, describe(it))
	}
	return out, next, nil
}

// seqKey is a sort key for a sequence number: zero-padded so that keys
// compare as the numbers do.
func seqKey(n int) string {
	return fmt.Sprintf("%012d", n)
}
