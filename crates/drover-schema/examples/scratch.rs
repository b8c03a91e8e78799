use yaml_rust2::parser::{Event, MarkedEventReceiver, Parser};
use yaml_rust2::scanner::Marker;
struct R;
impl MarkedEventReceiver for R {
    fn on_event(&mut self, ev: Event, m: Marker) { println!("  {:?} @{}:{} i{}", ev, m.line(), m.col(), m.index()); }
}
fn main() {
    let cases = [
        "{\n\t\"cluster\": {\n\t\t\"name\": \"a\"\n\t},\n\t\"hosts\": []\n}\n",
        "a: 1\na: 2\n",
        "a: 1\n---\nb: 2\n",
        "~\n",
        "a:\n  - x\n  -\n    b: 1\n",
        "{\"a\": 1 \"b\": 2}\n",
    ];
    for c in cases {
        println!("---\n{c}");
        match serde_yaml_ng::from_str::<serde_yaml_ng::Value>(c) {
            Ok(d) => println!("OK {d:?}"),
            Err(e) => println!("ERR {e} || {:?}", e.location().map(|l| (l.line(), l.column()))),
        }
        let mut p = Parser::new_from_str(c);
        if let Err(e) = p.load(&mut R, true) { println!("  SCANERR {} @{}:{}", e.info(), e.marker().line(), e.marker().col()); }
    }
}
