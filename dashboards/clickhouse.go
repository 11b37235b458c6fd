package dashboards

import (
	"encoding/json"

	"github.com/grafana/grafana-foundation-sdk/go/cog"
	"github.com/grafana/grafana-foundation-sdk/go/cog/variants"
	"github.com/grafana/grafana-foundation-sdk/go/common"
)

// PluginID is the ClickHouse data source plugin the dashboards query.
const PluginID = "grafana-clickhouse-datasource"

// Query formats of the ClickHouse plugin.
const (
	FormatTimeSeries = 0
	FormatTable      = 1
)

// ClickHouseQuery is a raw-SQL query of the grafana-clickhouse-datasource
// plugin. The SDK has no type for it, so it is a custom dataquery variant,
// as the SDK's README describes.
type ClickHouseQuery struct {
	RefId      *string               `json:"refId,omitempty"`
	Hide       *bool                 `json:"hide,omitempty"`
	Datasource *common.DataSourceRef `json:"datasource,omitempty"`
	EditorType string                `json:"editorType"`
	QueryType  string                `json:"queryType"`
	Format     int                   `json:"format"`
	RawSQL     string                `json:"rawSql"`
}

// ImplementsDataqueryVariant marks ClickHouseQuery as a dataquery.
func (ClickHouseQuery) ImplementsDataqueryVariant() {}

// DataqueryType names the variant.
func (ClickHouseQuery) DataqueryType() string { return PluginID }

// Equals reports whether other is the same query.
func (q ClickHouseQuery) Equals(other variants.Dataquery) bool {
	o, ok := other.(ClickHouseQuery)
	if !ok {
		return false
	}
	a, _ := json.Marshal(q)
	b, _ := json.Marshal(o)
	return string(a) == string(b)
}

// Validate checks nothing: every field is optional to the plugin.
func (ClickHouseQuery) Validate() error { return nil }

// ClickHouseVariant registers ClickHouseQuery with the SDK's runtime, so that
// dashboards holding it unmarshal back into the SDK's types.
func ClickHouseVariant() variants.DataqueryConfig {
	return variants.DataqueryConfig{
		Identifier: PluginID,
		DataqueryUnmarshaler: func(raw []byte) (variants.Dataquery, error) {
			q := ClickHouseQuery{}
			if err := json.Unmarshal(raw, &q); err != nil {
				return nil, err
			}
			return q, nil
		},
	}
}

var _ cog.Builder[variants.Dataquery] = (*ClickHouseQueryBuilder)(nil)

// ClickHouseQueryBuilder builds a ClickHouseQuery.
type ClickHouseQueryBuilder struct{ q ClickHouseQuery }

// SQL returns a builder for a query; table says whether Grafana reads it as
// a table rather than a time series.
func SQL(rawSQL string, table bool) *ClickHouseQueryBuilder {
	q := ClickHouseQuery{EditorType: "sql", QueryType: "timeseries", Format: FormatTimeSeries, RawSQL: rawSQL,
		Datasource: &common.DataSourceRef{Type: cog.ToPtr(PluginID), Uid: cog.ToPtr(ClickHouseUID)}}
	if table {
		q.QueryType, q.Format = "table", FormatTable
	}
	return &ClickHouseQueryBuilder{q: q}
}

// Build implements cog.Builder.
func (b *ClickHouseQueryBuilder) Build() (variants.Dataquery, error) { return b.q, nil }

// RefId sets the query's reference id.
func (b *ClickHouseQueryBuilder) RefId(id string) *ClickHouseQueryBuilder {
	b.q.RefId = &id
	return b
}
