// Types the dashboard check needs beyond @grafana/schema's own (tests/dashboards/test_schema.py writes
// one generated/<dashboard>.ts per dashboard that imports these and Grafana's types, then runs tsc).
import type * as common from '@grafana/schema';

// Grafana's schema declares its string enums as TypeScript enums (ThresholdsMode.Absolute = 'absolute'),
// and a JSON string literal is not assignable to a TS string enum. Strict<T> turns each string enum or
// string-literal union into the union of its values, deeply, and keeps everything else: required
// fields stay required, and object literals still get TypeScript's excess-property check, so a field
// the schema does not know, a wrong type or a value outside an enum is a compile error.
export type Strict<T> = T extends string
  ? `${T}`
  : T extends number | boolean | null | undefined
    ? T
    : T extends ReadonlyArray<infer U>
      ? Array<Strict<U>>
      : T extends object
        ? { [K in keyof T]: Strict<T[K]> }
        : T;

// A query of the PostgreSQL data source. @grafana/schema types panel targets as Record<string, unknown>;
// this is SQLQuery of @grafana/sql (packages/grafana-sql/src/types.ts in Grafana; first published to npm
// as 13.0.1, the same shape as in Grafana 12.3), with EditorMode from @grafana/plugin-ui.
export interface SQLQuery extends common.DataQuery {
  datasource?: common.DataSourceRef;
  alias?: string;
  format?: 'time_series' | 'table';
  rawSql?: string;
  dataset?: string;
  table?: string;
  sql?: Record<string, unknown>;
  editorMode?: 'builder' | 'code';
  rawQuery?: boolean;
  meta?: { valueField?: string; textField?: string };
}

// A Geomap markers layer's `config` (the schema has MapLayerOptions.config: unknown). From Grafana's
// public/app/plugins/panel/geomap/layers/data/markersLayer.tsx (MarkersConfig) and
// public/app/features/geo/style/types.ts (StyleConfig), built from the schema's dimension types.
export interface TextStyleConfig {
  fontSize?: number;
  offsetX?: number;
  offsetY?: number;
  textAlign?: 'left' | 'right' | 'center' | 'start' | 'end';
  textBaseline?: 'bottom' | 'top' | 'middle';
}
export interface StyleConfig {
  color?: common.ColorDimensionConfig;
  opacity?: number;
  lineWidth?: number;
  size?: common.ScaleDimensionConfig;
  symbol?: common.ResourceDimensionConfig;
  symbolAlign?: { horizontal?: 'left' | 'center' | 'right'; vertical?: 'top' | 'center' | 'bottom' };
  text?: common.TextDimensionConfig;
  textConfig?: TextStyleConfig;
  rotation?: common.ScalarDimensionConfig;
}
export interface MarkersConfig {
  showLegend?: boolean;
  style: StyleConfig;
}
// The data filter a layer applies (a frame matcher: Grafana's FrameMatcherID.byRefId).
export interface LayerFilter {
  id: 'byRefId';
  options: string;
}
