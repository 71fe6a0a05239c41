//! A seeded generator of schedule-like texts: what crontab fields are made
//! of (numbers small and huge, `*`, `-`, `/`, `,`, `L`, `W`, `#`, `?`,
//! `+`, names), lines drawn within the field bounds, macros and noise.

// Each test file uses only part of the support module.
#![allow(dead_code)]

/// SplitMix64: small, seedable, good enough to spread the cases.
pub struct Rng(pub u64);

impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    pub fn below(&mut self, n: u64) -> u64 {
        self.next() % n
    }

    pub fn pick<'a>(&mut self, items: &[&'a str]) -> &'a str {
        items[self.below(items.len() as u64) as usize]
    }
}

fn number(rng: &mut Rng) -> String {
    match rng.below(20) {
        0 => rng.next().to_string(),
        1 => "9".repeat(1 + rng.below(30) as usize),
        2 | 3 => (1970 + rng.below(200)).to_string(),
        4 => u32::MAX.to_string(),
        5..=9 => rng.below(64).to_string(),
        _ => (1 + rng.below(12)).to_string(),
    }
}

fn atom(rng: &mut Rng) -> String {
    match rng.below(12) {
        0 | 1 => "*".into(),
        2 => rng
            .pick(&["L", "W", "LW", "?", "JAN", "dec", "MON", "sun", "FRI"])
            .into(),
        3 => format!("{}W", number(rng)),
        4 => format!("{}L", number(rng)),
        _ => number(rng),
    }
}

fn item(rng: &mut Rng) -> String {
    let mut s = atom(rng);
    if rng.below(3) == 0 {
        s = format!("{s}-{}", atom(rng));
    }
    match rng.below(12) {
        0 | 1 => s = format!("{s}/{}", number(rng)),
        2 => s = format!("{s}#{}", number(rng)),
        _ => {}
    }
    s
}

fn field(rng: &mut Rng) -> String {
    let items = match rng.below(40) {
        0 => 60 + rng.below(20),
        1..=29 => 1,
        _ => 2 + rng.below(3),
    };
    let list: Vec<String> = (0..items).map(|_| item(rng)).collect();
    let mut s = list.join(",");
    if rng.below(15) == 0 {
        s.insert(0, '+');
    }
    s
}

/// A field drawn within its bounds `lo..=hi`, with the forms of its
/// position (`L`, `W`, `#`, `+`), so that the line parses unless its days
/// name no date: these reach croner and the never-fires check.
fn bounded_field(rng: &mut Rng, lo: u64, hi: u64, position: usize) -> String {
    let mut value = || lo + rng.below(hi - lo + 1);
    let (a, b) = (value(), value());
    let (a, b) = (a.min(b), a.max(b));
    let s = match rng.below(8) {
        0 => "*".to_string(),
        1 => format!("{a}-{b}"),
        2 => format!("*/{}", 1 + rng.below(hi - lo + 1).min(6)),
        3 => format!("{a}-{b}/{}", 1 + rng.below(5)),
        4 => format!("{a},{b}"),
        _ => a.to_string(),
    };
    match (position, rng.below(6)) {
        (3, 0) => rng.pick(&["L", "LW", "15W", "1W", "31W"]).to_string(),
        (5, 0) => format!("{}#{}", rng.below(8), 1 + rng.below(5)),
        (5, 1) => format!("{}L", rng.below(8)),
        (5, 2) => format!("+{s}"),
        _ => s,
    }
}

fn bounded_line(rng: &mut Rng) -> String {
    const BOUNDS: [(u64, u64); 7] = [
        (0, 59),
        (0, 59),
        (0, 23),
        (1, 31),
        (1, 12),
        (0, 7),
        (2020, 2099),
    ];
    let (first, last) = match rng.below(3) {
        0 => (0, 7),
        1 => (0, 6),
        _ => (1, 6),
    };
    (first..last)
        .map(|i| bounded_field(rng, BOUNDS[i].0, BOUNDS[i].1, i))
        .collect::<Vec<_>>()
        .join(" ")
}

pub fn schedule_like(rng: &mut Rng) -> String {
    if rng.below(3) == 0 {
        return bounded_line(rng);
    }
    match rng.below(20) {
        0 => format!(
            "@every {}{}",
            number(rng),
            rng.pick(&["s", "m", "h", "d", "ms", "y", "", " 1s", "s 5"])
        ),
        1 => format!(
            "@at {}-{:02}-{:02}T{:02}:00:00Z",
            1000 + rng.below(9000),
            rng.below(14),
            rng.below(33),
            rng.below(25)
        ),
        2 => rng
            .pick(&[
                "@daily", "@HOURLY", "@yearly", "@manual", "@weekly", "@at", "@",
            ])
            .into(),
        3 => {
            // Noise: printable ASCII and a few non-ASCII characters.
            let len = rng.below(40) as usize;
            (0..len)
                .map(|_| match rng.below(20) {
                    0 => 'é',
                    1 => '\u{3000}',
                    _ => char::from(32 + rng.below(95) as u8),
                })
                .collect()
        }
        _ => {
            let fields = match rng.below(10) {
                0 => rng.below(10),
                1..=3 => 6,
                4 => 7,
                _ => 5,
            };
            (0..fields)
                .map(|_| field(rng))
                .collect::<Vec<_>>()
                .join(" ")
        }
    }
}
