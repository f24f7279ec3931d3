//! The decimal arithmetic behind sprig's `addf`, `subf`, `mulf` and `divf`
//! (shopspring/decimal): each float is taken at its shortest decimal form, the operation
//! is exact (division rounded to 16 places), and the result is read back as a float. So
//! `addf 0.1 0.2` is `0.3`, not `0.30000000000000004`.

/// `mantissa × 10^exp`.
#[derive(Debug, Clone, Copy)]
struct Dec {
    m: i128,
    exp: i32,
}

fn from_f64(f: f64) -> Option<Dec> {
    if !f.is_finite() {
        return None;
    }
    let s = format!("{:e}", f);
    let (mant, e) = s.split_once('e')?;
    let e: i32 = e.parse().ok()?;
    let neg = mant.starts_with('-');
    let digits: String = mant.chars().filter(char::is_ascii_digit).collect();
    let frac_len = mant.split_once('.').map_or(0, |(_, f)| f.len()) as i32;
    let m: i128 = digits.parse().ok()?;
    Some(Dec {
        m: if neg { -m } else { m },
        exp: e - frac_len,
    })
}

fn to_f64(d: Dec) -> f64 {
    format!("{}e{}", d.m, d.exp).parse().unwrap_or(f64::NAN)
}

fn pow10(n: u32) -> Option<i128> {
    10i128.checked_pow(n)
}

fn align(a: Dec, b: Dec) -> Option<(i128, i128, i32)> {
    if a.exp == b.exp {
        return Some((a.m, b.m, a.exp));
    }
    let (hi, lo) = if a.exp > b.exp { (a, b) } else { (b, a) };
    let diff = u32::try_from(hi.exp - lo.exp).ok()?;
    let hm = hi.m.checked_mul(pow10(diff)?)?;
    if a.exp > b.exp {
        Some((hm, lo.m, lo.exp))
    } else {
        Some((lo.m, hm, lo.exp))
    }
}

#[derive(Debug, Clone, Copy)]
pub(crate) enum Op {
    Add,
    Sub,
    Mul,
    Div,
}

/// Applies `op` left to right over `values`. Division by zero is an error, as the Go
/// library panics on it.
pub(crate) fn fold(values: &[f64], op: Op) -> Result<f64, String> {
    let Some((&first, rest)) = values.split_first() else {
        return Ok(0.0);
    };
    let mut acc = first;
    for &x in rest {
        if matches!(op, Op::Div) && x == 0.0 {
            return Err("decimal division by 0".into());
        }
        acc = exact(acc, x, op).unwrap_or(match op {
            Op::Add => acc + x,
            Op::Sub => acc - x,
            Op::Mul => acc * x,
            Op::Div => acc / x,
        });
    }
    Ok(acc)
}

fn exact(a: f64, b: f64, op: Op) -> Option<f64> {
    let (da, db) = (from_f64(a)?, from_f64(b)?);
    let r = match op {
        Op::Add => {
            let (x, y, e) = align(da, db)?;
            Dec {
                m: x.checked_add(y)?,
                exp: e,
            }
        }
        Op::Sub => {
            let (x, y, e) = align(da, db)?;
            Dec {
                m: x.checked_sub(y)?,
                exp: e,
            }
        }
        Op::Mul => Dec {
            m: da.m.checked_mul(db.m)?,
            exp: da.exp.checked_add(db.exp)?,
        },
        Op::Div => {
            // Quotient to 16 decimal places, rounded half away from zero.
            const PREC: i32 = 16;
            let shift = PREC + da.exp - db.exp;
            let (num, den) = if shift >= 0 {
                (
                    da.m.checked_mul(pow10(u32::try_from(shift + 1).ok()?)?)?,
                    db.m,
                )
            } else {
                (
                    da.m.checked_mul(10)?,
                    db.m.checked_mul(pow10(u32::try_from(-shift).ok()?)?)?,
                )
            };
            let q = num / den;
            let rounded = if q % 10 >= 5 {
                q / 10 + 1
            } else if q % 10 <= -5 {
                q / 10 - 1
            } else {
                q / 10
            };
            Dec {
                m: rounded,
                exp: -PREC,
            }
        }
    };
    Some(to_f64(r))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exact_decimal_results() {
        assert_eq!(fold(&[0.1, 0.2], Op::Add), Ok(0.3));
        assert_eq!(fold(&[1.5, 0.25, 0.25], Op::Add), Ok(2.0));
        assert_eq!(fold(&[0.3, 0.1], Op::Sub), Ok(0.2));
        assert_eq!(fold(&[1.1, 3.0], Op::Mul), Ok(3.3));
        assert_eq!(fold(&[10.0, 3.0], Op::Div), Ok(3.3333333333333335));
        assert_eq!(fold(&[1.0, 8.0], Op::Div), Ok(0.125));
        assert!(fold(&[1.0, 0.0], Op::Div).is_err());
    }
}
