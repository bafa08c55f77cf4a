// How values of the contract are shown: AWS's spellings of enums, times
// relative and exact, booleans as the AWS console words them.
import { timestampDate, type Timestamp } from "@bufbuild/protobuf/wkt";

/**
 * awsEnum renders an enum value as AWS spells it (PENDING_ASSOCIATE →
 * pending-associate), or AWS's own spelling of a value the contract does not
 * know. It returns undefined when AWS sent nothing.
 */
export function awsEnum(names: Record<number, string>, value: number, unrecognized?: string): string | undefined {
  if (value === 0) return unrecognized;
  const name = names[value];
  return name === undefined ? String(value) : name.toLowerCase().replaceAll("_", "-");
}

/** enabled words a boolean as the AWS console does. */
export function enabled(value: boolean): string {
  return value ? "Enabled" : "Disabled";
}

/** isoSeconds renders a time as RFC 3339 in UTC without fractions when whole. */
export function isoSeconds(d: Date): string {
  const s = d.toISOString();
  return s.endsWith(".000Z") ? s.slice(0, -5) + "Z" : s;
}

/** toDate converts a protobuf timestamp, or undefined. */
export function toDate(t: Timestamp | undefined): Date | undefined {
  return t ? timestampDate(t) : undefined;
}

/** ago renders the time from then to now in words: "12 s ago", "3 days ago". */
export function ago(then: Date, now: Date = new Date()): string {
  const s = Math.round((now.getTime() - then.getTime()) / 1000);
  if (s < 0) return "just now";
  if (s < 90) return `${s} s ago`;
  const m = Math.round(s / 60);
  if (m < 90) return `${m} min ago`;
  const h = Math.round(m / 60);
  if (h < 36) return `${h} h ago`;
  const d = Math.round(h / 24);
  if (d < 60) return `${d} days ago`;
  const mo = Math.round(d / 30.44);
  if (mo < 24) return `${mo} months ago`;
  return `${Math.round(d / 365.25)} years ago`;
}

/** plural words a count: plural(1, "match", "matches") → "1 match". */
export function plural(n: number, one: string, many: string): string {
  return `${n.toLocaleString("en-US")} ${n === 1 ? one : many}`;
}
