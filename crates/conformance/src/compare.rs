//! The comparison rules of `testdata/conformance/README.md`.

use std::collections::{BTreeMap, BTreeSet};

use serde_json::Value;

use crate::Case;

/// Whether an answer (`status` and body text) matches Loki's for `case`; `Err` says the
/// first difference.
pub fn compare(case: &Case, status: u16, body: &str) -> Result<(), String> {
    if status != case.status {
        let mut why = format!("status {status}, want {}", case.status);
        if status != 200 {
            why.push_str(&format!(": {}", body.trim()));
        }
        return Err(why);
    }
    if case.status != 200 {
        return Ok(()); // error texts differ between implementations; the status decides
    }
    let got: Value = serde_json::from_str(body).unwrap_or_else(|_| Value::String(body.into()));
    let want = &case.body;
    match case.compare.as_deref() {
        Some("approx") => return approx(want, &got),
        Some("detected") => return detected(want, &got),
        _ => {}
    }
    if let (Value::String(_), _) | (_, Value::String(_)) = (want, &got) {
        let (w, g) = (want.as_str().unwrap_or(""), got.as_str().unwrap_or(""));
        return if w.trim() == g.trim() {
            Ok(())
        } else {
            Err("body differs".into())
        };
    }
    if want.get("status") != got.get("status") {
        return Err(format!(
            "status field {:?}, want {:?}",
            got.get("status"),
            want.get("status")
        ));
    }
    let (wd, gd) = (&want["data"], &got["data"]);
    if let Value::Array(wl) = wd {
        let Value::Array(gl) = gd else {
            return Err("data is not a list".into());
        };
        let canon = |l: &Vec<Value>| {
            let mut v: Vec<String> = l.iter().map(|x| canon(&normalize(x))).collect();
            v.sort();
            v
        };
        return if canon(wl) == canon(gl) {
            Ok(())
        } else {
            Err(format!("list differs: got {}, want {}", gl.len(), wl.len()))
        };
    }
    if let Some(rt) = wd.get("resultType") {
        if gd.get("resultType") != Some(rt) {
            return Err(format!("resultType {:?}, want {rt}", gd.get("resultType")));
        }
        return result(rt.as_str().unwrap_or(""), wd, gd, case.compare.as_deref());
    }
    if normalize(wd) == normalize(gd) {
        Ok(())
    } else {
        Err("data differs".into())
    }
}

fn canon(v: &Value) -> String {
    v.to_string()
}

/// Sorts arrays (recursively) so that lists compare in any order.
fn normalize(v: &Value) -> Value {
    match v {
        Value::Object(m) => {
            Value::Object(m.iter().map(|(k, v)| (k.clone(), normalize(v))).collect())
        }
        Value::Array(a) => {
            let mut items: Vec<Value> = a.iter().map(normalize).collect();
            items.sort_by_key(canon);
            Value::Array(items)
        }
        other => other.clone(),
    }
}

/// A label object as a sorted list of pairs.
fn labels_key(v: &Value) -> String {
    let m: BTreeMap<&str, &str> = v
        .as_object()
        .map(|o| {
            o.iter()
                .map(|(k, v)| (k.as_str(), v.as_str().unwrap_or("")))
                .collect()
        })
        .unwrap_or_default();
    serde_json::to_string(&m).unwrap_or_default()
}

fn num(v: &Value) -> Option<f64> {
    match v {
        Value::Number(n) => n.as_f64(),
        Value::String(s) => match s.as_str() {
            "NaN" => Some(f64::NAN),
            "+Inf" | "Inf" => Some(f64::INFINITY),
            "-Inf" => Some(f64::NEG_INFINITY),
            s => s.parse().ok(),
        },
        _ => None,
    }
}

/// Numbers within a relative 1e-9 (absolute 1e-12); NaN equals NaN.
fn same_num(a: &Value, b: &Value) -> bool {
    if a == b {
        return true;
    }
    match (num(a), num(b)) {
        (Some(x), Some(y)) => {
            if x.is_nan() && y.is_nan() {
                return true;
            }
            if x == y {
                return true;
            }
            (x - y).abs() <= f64::max(1e-9 * f64::max(x.abs(), y.abs()), 1e-12)
        }
        _ => false,
    }
}

fn items(v: &Value) -> &[Value] {
    v.as_array().map(Vec::as_slice).unwrap_or(&[])
}

fn result(rt: &str, wd: &Value, gd: &Value, mode: Option<&str>) -> Result<(), String> {
    let (wr, gr) = (&wd["result"], &gd["result"]);
    match rt {
        "streams" => {
            let index = |r: &Value| -> BTreeMap<String, Vec<Value>> {
                items(r)
                    .iter()
                    .map(|s| (labels_key(&s["stream"]), items(&s["values"]).to_vec()))
                    .collect()
            };
            let (wm, gm) = (index(wr), index(gr));
            let wk: BTreeSet<&String> = wm.keys().collect();
            let gk: BTreeSet<&String> = gm.keys().collect();
            if wk != gk {
                let missing: Vec<_> = wk.difference(&gk).take(3).collect();
                let extra: Vec<_> = gk.difference(&wk).take(3).collect();
                return Err(format!(
                    "stream label sets differ: missing {} {missing:?}, extra {} {extra:?}",
                    wk.difference(&gk).count(),
                    gk.difference(&wk).count()
                ));
            }
            if wd.get("encodingFlags") != gd.get("encodingFlags") {
                return Err(format!(
                    "encodingFlags {:?}, want {:?}",
                    gd.get("encodingFlags"),
                    wd.get("encodingFlags")
                ));
            }
            for (k, wv) in &wm {
                let gv = &gm[k];
                let head = |v: &[Value]| -> Vec<Vec<Value>> {
                    v.iter()
                        .map(|e| items(e).iter().take(2).cloned().collect())
                        .collect()
                };
                if head(wv) != head(gv) {
                    let first = head(wv)
                        .iter()
                        .zip(head(gv))
                        .position(|(a, b)| *a != b)
                        .unwrap_or(wv.len().min(gv.len()));
                    return Err(format!(
                        "entries differ in stream {k} ({} vs {}), first at {first}: got {:?}, want {:?}",
                        gv.len(),
                        wv.len(),
                        gv.get(first),
                        wv.get(first)
                    ));
                }
                let tail = |v: &[Value]| -> Vec<Vec<Value>> {
                    v.iter()
                        .map(|e| items(e).iter().skip(2).cloned().collect())
                        .collect()
                };
                if tail(wv) != tail(gv) {
                    return Err(format!("entry label categories differ in stream {k}"));
                }
            }
            Ok(())
        }
        "scalar" => {
            let (w, g) = (items(wr), items(gr));
            if w.len() == 2 && g.len() == 2 && w[0] == g[0] && same_num(&w[1], &g[1]) {
                Ok(())
            } else {
                Err(format!("scalar {gr}, want {wr}"))
            }
        }
        _ => {
            let key = if rt == "matrix" { "values" } else { "value" };
            let points = |s: &Value| -> Vec<Value> {
                if rt == "matrix" {
                    items(&s[key]).to_vec()
                } else {
                    vec![s[key].clone()]
                }
            };
            if mode == Some("ties") {
                let per_step = |r: &Value| {
                    let mut out: BTreeMap<String, Vec<f64>> = BTreeMap::new();
                    for s in items(r) {
                        for p in points(s) {
                            let t = num(&p[0]).unwrap_or(f64::NAN);
                            out.entry(format!("{t}"))
                                .or_default()
                                .push(num(&p[1]).unwrap_or(f64::NAN));
                        }
                    }
                    for v in out.values_mut() {
                        v.sort_by(f64::total_cmp);
                    }
                    out
                };
                let (wp, gp) = (per_step(wr), per_step(gr));
                if wp.keys().ne(gp.keys()) {
                    return Err("steps differ".into());
                }
                for (t, wv) in &wp {
                    let gv = &gp[t];
                    if wv.len() != gv.len()
                        || wv
                            .iter()
                            .zip(gv)
                            .any(|(a, b)| !same_num(&(*a).into(), &(*b).into()))
                    {
                        return Err(format!("values at {t} differ: {gv:?} vs {wv:?}"));
                    }
                }
                return Ok(());
            }
            let index = |r: &Value| -> BTreeMap<String, Vec<Value>> {
                items(r)
                    .iter()
                    .map(|s| (labels_key(&s["metric"]), points(s)))
                    .collect()
            };
            let (wm, gm) = (index(wr), index(gr));
            if wm.keys().ne(gm.keys()) {
                let wk: BTreeSet<&String> = wm.keys().collect();
                let gk: BTreeSet<&String> = gm.keys().collect();
                let missing: Vec<_> = wk.difference(&gk).take(3).collect();
                let extra: Vec<_> = gk.difference(&wk).take(3).collect();
                return Err(format!(
                    "series label sets differ: missing {} {missing:?}, extra {} {extra:?}",
                    wk.difference(&gk).count(),
                    gk.difference(&wk).count()
                ));
            }
            for (k, wv) in &wm {
                let gv = &gm[k];
                if wv.len() != gv.len() {
                    return Err(format!(
                        "points differ in {k} ({} vs {})",
                        gv.len(),
                        wv.len()
                    ));
                }
                for (w, g) in wv.iter().zip(gv) {
                    if !same_num(&w[0], &g[0]) || !same_num(&w[1], &g[1]) {
                        return Err(format!(
                            "value differs in {k} at {}: {} vs {}",
                            w[0], g[1], w[1]
                        ));
                    }
                }
            }
            Ok(())
        }
    }
}

/// Within 15% (of the larger, at least 1).
fn close(a: &Value, b: &Value) -> bool {
    match (num(a), num(b)) {
        (Some(x), Some(y)) => (x - y).abs() <= 0.15 * x.abs().max(y.abs()).max(1.0),
        _ => a == b,
    }
}

/// Index stats and volumes: counts exact, bytes within 15%, chunks free.
fn approx(want: &Value, got: &Value) -> Result<(), String> {
    if !got.is_object() {
        return Err("not a JSON object".into());
    }
    if want.get("streams").is_some() {
        for k in ["streams", "entries"] {
            if want.get(k) != got.get(k) {
                return Err(format!("{k} {:?}, want {:?}", got.get(k), want.get(k)));
            }
        }
        return if close(&want["bytes"], &got["bytes"]) {
            Ok(())
        } else {
            Err(format!(
                "bytes {}, want about {}",
                got["bytes"], want["bytes"]
            ))
        };
    }
    let (wd, gd) = (&want["data"], &got["data"]);
    if wd.get("resultType") != gd.get("resultType") {
        return Err(format!(
            "resultType {:?}, want {:?}",
            gd.get("resultType"),
            wd.get("resultType")
        ));
    }
    let matrix = wd["resultType"] == "matrix";
    let key = if matrix { "values" } else { "value" };
    let index = |r: &Value| -> BTreeMap<String, Value> {
        items(r)
            .iter()
            .map(|s| (labels_key(&s["metric"]), s[key].clone()))
            .collect()
    };
    let (wm, gm) = (index(&wd["result"]), index(&gd["result"]));
    if wm.keys().ne(gm.keys()) {
        return Err("series label sets differ".into());
    }
    for (k, wv) in &wm {
        let gv = &gm[k];
        let pairs: Vec<(&Value, &Value)> = if matrix {
            items(wv).iter().zip(items(gv)).collect()
        } else {
            vec![(wv, gv)]
        };
        for (w, g) in pairs {
            if !same_num(&w[0], &g[0]) || !close(&w[1], &g[1]) {
                return Err(format!("value differs in {k}: {} vs {}", g[1], w[1]));
            }
        }
    }
    Ok(())
}

/// Detected labels and fields: the same names, types and parsers.
fn detected(want: &Value, got: &Value) -> Result<(), String> {
    if !got.is_object() {
        return Err("not a JSON object".into());
    }
    let strs = |v: &Value| -> Vec<String> {
        let mut s: Vec<String> = items(v)
            .iter()
            .map(|x| x.as_str().unwrap_or("").to_string())
            .collect();
        s.sort();
        s
    };
    if let Some(w) = want.get("detectedLabels") {
        let names = |v: &Value| -> Vec<String> {
            let mut s: Vec<String> = items(v)
                .iter()
                .map(|x| x["label"].as_str().unwrap_or("").to_string())
                .collect();
            s.sort();
            s
        };
        let (wn, gn) = (names(w), names(&got["detectedLabels"]));
        return if wn == gn {
            Ok(())
        } else {
            Err(format!("labels {gn:?}, want {wn:?}"))
        };
    }
    if let Some(w) = want.get("fields") {
        let fields = |v: &Value| -> Vec<(String, String, Vec<String>)> {
            let mut s: Vec<_> = items(v)
                .iter()
                .map(|x| {
                    (
                        x["label"].as_str().unwrap_or("").to_string(),
                        x["type"].as_str().unwrap_or("").to_string(),
                        strs(&x["parsers"]),
                    )
                })
                .collect();
            s.sort();
            s
        };
        let (wf, gf) = (fields(w), fields(&got["fields"]));
        return if wf == gf {
            Ok(())
        } else {
            Err(format!("fields {gf:?}, want {wf:?}"))
        };
    }
    if let Some(w) = want.get("values") {
        return if strs(w) == strs(&got["values"]) {
            Ok(())
        } else {
            Err("values differ".into())
        };
    }
    if normalize(want) == normalize(got) {
        Ok(())
    } else {
        Err("differs".into())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn case(compare: Option<&str>, status: u16, body: Value) -> Case {
        Case {
            id: "t".into(),
            path: "/".into(),
            params: vec![],
            headers: vec![],
            compare: compare.map(str::to_string),
            status,
            body,
        }
    }

    #[test]
    fn matrix_sets_and_tolerance() {
        let c = case(
            None,
            200,
            serde_json::json!({"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{"a":"1"},"values":[[1,"0.1"],[2,"NaN"]]},
                {"metric":{"a":"2"},"values":[[1,"3"]]}]}}),
        );
        let ok = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"a":"2"},"values":[[1,"3"]]},
            {"metric":{"a":"1"},"values":[[1,"0.10000000000001"],[2,"NaN"]]}],"stats":{}}}"#;
        assert_eq!(compare(&c, 200, ok), Ok(()));
        let bad = ok.replace("\"3\"", "\"4\"");
        assert!(compare(&c, 200, &bad).is_err());
        assert!(compare(&c, 400, "nope").is_err());
    }

    #[test]
    fn errors_compare_by_status_and_streams_in_order() {
        let c = case(None, 400, Value::String("parse error".into()));
        assert_eq!(compare(&c, 400, "something else"), Ok(()));
        let c = case(
            None,
            200,
            serde_json::json!({"status":"success","data":{"resultType":"streams","result":[
                {"stream":{"a":"1"},"values":[["2","x"],["1","y"]]}]}}),
        );
        let swapped = r#"{"status":"success","data":{"resultType":"streams","result":[
            {"stream":{"a":"1"},"values":[["1","y"],["2","x"]]}]}}"#;
        assert!(compare(&c, 200, swapped).is_err());
    }

    #[test]
    fn ties_compare_values_per_step() {
        let c = case(
            Some("ties"),
            200,
            serde_json::json!({"status":"success","data":{"resultType":"matrix","result":[
                {"metric":{"p":"a"},"values":[[1,"5"]]},{"metric":{"p":"b"},"values":[[1,"5"]]}]}}),
        );
        let other = r#"{"status":"success","data":{"resultType":"matrix","result":[
            {"metric":{"p":"c"},"values":[[1,"5"]]},{"metric":{"p":"b"},"values":[[1,"5"]]}]}}"#;
        assert_eq!(compare(&c, 200, other), Ok(()));
    }
}
