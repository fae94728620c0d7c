//! The registry of diagnostic codes. Each code is documented once, in
//! `docs/errors/CODE.md`, which `guardflow explain` prints; the file is
//! embedded here, so a code without a page does not compile.

use serde::{Deserialize, Serialize};

use super::Severity;

macro_rules! codes {
    ($($code:ident $sev:ident $title:literal;)*) => {
        /// A stable diagnostic code: `E….` errors, `W….` warnings.
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        pub enum Code { $($code),* }

        impl Code {
            /// Every code, in order.
            pub const ALL: &'static [Code] = &[$(Code::$code),*];

            pub fn as_str(self) -> &'static str {
                match self { $(Code::$code => stringify!($code)),* }
            }

            /// A few words naming the problem, as in the diagnostics index.
            pub fn title(self) -> &'static str {
                match self { $(Code::$code => $title),* }
            }

            pub fn severity(self) -> Severity {
                match self { $(Code::$code => Severity::$sev),* }
            }

            /// The page `guardflow explain` prints: What / Why / Example / Fix.
            pub fn explanation(self) -> &'static str {
                match self {
                    $(Code::$code => include_str!(concat!(
                        env!("CARGO_MANIFEST_DIR"), "/docs/errors/", stringify!($code), ".md"
                    ))),*
                }
            }

            /// Parses `E0101` (case-insensitive).
            pub fn parse(s: &str) -> Option<Code> {
                let upper = s.trim().to_ascii_uppercase();
                Code::ALL.iter().copied().find(|c| c.as_str() == upper)
            }
        }

        impl std::fmt::Display for Code {
            fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
                f.write_str(self.as_str())
            }
        }
    };
}

codes! {
    // syntax
    E0001 Error "syntax error";
    E0002 Error "unterminated string";
    E0003 Error "invalid escape sequence";
    E0004 Error "malformed interpolation";
    E0005 Error "invalid number or duration";
    E0006 Error "nesting too deep";
    E0007 Error "mixed ordering operators";
    E0008 Error "unknown property";
    E0009 Error "property given twice";
    E0010 Error "missing required property";
    E0011 Error "invalid property value";
    E0012 Error "invalid type syntax";
    // names
    E0101 Error "unknown type";
    E0102 Error "unknown guard";
    E0103 Error "unknown generator";
    E0104 Error "unknown action or task";
    E0105 Error "unknown value";
    E0106 Error "unknown subtask label";
    E0107 Error "unknown resource";
    E0108 Error "unknown standard library item";
    E0109 Error "imported file cannot be read";
    E0110 Error "duplicate definition";
    E0111 Error "duplicate subtask label";
    E0112 Error "duplicate parameter, field or tag";
    E0113 Error "wrong kind of name";
    E0114 Error "ordering does not name every subtask once";
    E0115 Error "partial order without `<`";
    // types
    E0201 Error "wrong number of arguments";
    E0202 Error "mismatched argument type";
    E0203 Error "unknown named argument";
    E0204 Error "argument given twice";
    E0205 Error "guard applied to the wrong artifact type";
    E0206 Error "mismatched result type";
    E0207 Error "missing or misplaced result";
    E0208 Error "invalid type";
    E0209 Error "recursive type alias";
    E0210 Error "guard combines incompatible artifact types";
    E0211 Error "mismatched input default";
    E0212 Error "effect property without an effect";
    E0213 Error "malformed test";
    E0214 Error "no such field";
    E0215 Error "recursive guard definition";
    E0216 Error "value spliced into a program string";
    E0217 Error "definitions nested too deeply";
    E0218 Error "values that cannot be compared";
    E0219 Error "length of a value without one";
    E0220 Error "predicate that is not a Bool";
    E0221 Error "typed predicate where the artifact is judged";
    E0224 Error "list bound out of range";
    E0225 Error "map over a list without a bound";
    E0226 Error "map over a value that is not a list";
    E0227 Error "map item name already in use";
    E0230 Error "`best-of` on an action with an effect";
    E0231 Error "attempt context outside a prompt";
    E0234 Error "`Generator` outside a parameter";
    E0235 Error "judge bound not a literal";
    E0236 Error "judge where no answer is judged";
    E0238 Error "malformed fallback generator";
    // deadlock
    E0301 Error "ordering cycle";
    E0302 Error "artifact read before it is produced";
    E0303 Error "artifact read across parallel branches";
    E0304 Error "resource held by an ancestor";
    E0305 Error "hold-and-wait cycle";
    E0306 Error "demand larger than the pool";
    E0307 Error "map items run effects on one resource at once";
    // termination
    E0401 Error "no retry bound";
    E0402 Error "no timeout";
    E0403 Error "unbounded recursion";
    E0404 Error "escalation target not upstream";
    E0405 Error "unbounded escalation";
    E0406 Error "retried effect that is not idempotent";
    E0407 Error "parallel effects on one resource";
    // warnings
    W0001 Warning "unused item";
    W0002 Warning "unused import";
    W0003 Warning "unused parameter";
    W0004 Warning "doc comment attached to nothing";
    W0005 Warning "method can never be chosen";
    W0007 Warning "map item never used";
    W0008 Warning "`resample` with attempt context in the prompt";
}
