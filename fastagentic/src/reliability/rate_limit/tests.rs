use super::*;

const HOUR: Duration = Duration::from_secs(3600);

fn limiter(policy: RateLimitPolicyBuilder) -> RateLimiter {
    RateLimiter::new(&policy.build().unwrap(), LimitScope::Endpoint)
}

fn anonymous() -> Identity<'static> {
    Identity::default()
}

#[test]
fn two_threads_hammering_get_exactly_rpm_per_minute() {
    let limiter = limiter(RateLimitPolicy::builder().requests_per_minute(50));
    for minute in 0..3u64 {
        let now = minute * MINUTE_NANOS;
        let admitted: usize = std::thread::scope(|s| {
            let workers: Vec<_> = (0..2)
                .map(|_| {
                    s.spawn(|| {
                        (0..1000)
                            .filter(|_| {
                                limiter
                                    .take_all(anonymous(), None, now, 0, |_, _| {})
                                    .map(|admission| drop(admission.commit()))
                                    .is_ok()
                            })
                            .count()
                    })
                })
                .collect();
            workers.into_iter().map(|w| w.join().unwrap()).sum()
        });
        assert_eq!(admitted, 50, "minute {minute}");
    }
}

#[tokio::test(start_paused = true)]
async fn reject_reports_limit_type_current_and_retry_after() {
    let limiter = limiter(RateLimitPolicy::builder().requests_per_minute(2));
    let deadline = Instant::now() + HOUR;
    let _admitted = limiter.admit(anonymous(), None, deadline).await.unwrap();
    let _admitted = limiter.admit(anonymous(), None, deadline).await.unwrap();
    let err = limiter
        .admit(anonymous(), None, deadline)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::RateLimit);
    assert_eq!(err.retry_after(), Some(Duration::from_secs(30)));
    assert_eq!(
        err.detail(),
        Some(&ErrorDetail::RateLimited {
            limit_type: LimitType::Rpm,
            scope: LimitScope::Endpoint,
            current: 3,
            limit: 2,
            retry_after: Duration::from_secs(30),
        })
    );
    let snap = limiter.snapshot(anonymous()).unwrap();
    assert_eq!((snap.limit, snap.remaining), (2, 0));
    assert_eq!(snap.reset, Duration::from_secs(60));
}

#[tokio::test(start_paused = true)]
async fn delay_mode_waits_for_the_slot_within_the_deadline() {
    let limiter = limiter(
        RateLimitPolicy::builder()
            .requests_per_minute(1)
            .on_limit(OnLimit::Delay),
    );
    let start = Instant::now();
    let _admitted = limiter
        .admit(anonymous(), None, start + HOUR)
        .await
        .unwrap();
    let _admitted = limiter
        .admit(anonymous(), None, start + HOUR)
        .await
        .unwrap();
    assert_eq!(start.elapsed(), Duration::from_secs(60));
    // A slot 60 s away is past a 10 s deadline: refused without waiting.
    let now = Instant::now();
    let err = limiter
        .admit(anonymous(), None, now + Duration::from_secs(10))
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::RateLimit);
    assert_eq!(now.elapsed(), Duration::ZERO);
}

#[tokio::test(start_paused = true)]
async fn queue_mode_serves_in_order_and_refuses_when_full() {
    let limiter = Arc::new(limiter(
        RateLimitPolicy::builder()
            .requests_per_minute(1)
            .on_limit(OnLimit::Queue)
            .queue_capacity(2),
    ));
    let start = Instant::now();
    let _admitted = limiter
        .admit(anonymous(), None, start + HOUR)
        .await
        .unwrap();
    let mut waiters = Vec::new();
    for i in 0..2 {
        let limiter = limiter.clone();
        waiters.push(tokio::spawn(async move {
            limiter
                .admit(anonymous(), None, start + HOUR)
                .await
                .map(|a| {
                    drop(a);
                    (i, start.elapsed())
                })
        }));
    }
    tokio::task::yield_now().await;
    let err = limiter
        .admit(anonymous(), None, start + HOUR)
        .await
        .unwrap_err();
    assert!(err.message().contains("queue is full"), "{err}");
    let mut served = Vec::new();
    for w in waiters {
        served.push(w.await.unwrap().unwrap());
    }
    assert_eq!(
        served,
        [(0, Duration::from_secs(60)), (1, Duration::from_secs(120))]
    );
}

#[tokio::test(start_paused = true)]
async fn tpm_reconciliation_refunds_over_estimates() {
    let limiter = limiter(RateLimitPolicy::builder().tokens_per_minute(10_000));
    let deadline = Instant::now() + HOUR;
    let tokens_left = |l: &RateLimiter| {
        let now = l.nanos(Instant::now());
        match &l.rules[0].cells {
            Cells::Single(cell) => cell.remaining(l.rules[0].rate, now),
            Cells::Keyed(_) => unreachable!(),
        }
    };
    let admission = limiter
        .admit(anonymous(), Some(4000), deadline)
        .await
        .unwrap();
    assert_eq!(tokens_left(&limiter), 6000);
    admission.reconcile(1500);
    assert_eq!(tokens_left(&limiter), 8500);
    let admission = limiter
        .admit(anonymous(), Some(1000), deadline)
        .await
        .unwrap();
    admission.reconcile(3000);
    assert_eq!(tokens_left(&limiter), 5500);
    let err = limiter
        .admit(anonymous(), Some(20_000), deadline)
        .await
        .unwrap_err();
    assert_eq!(err.class(), ErrorClass::RequestTooLarge);
}

#[tokio::test(start_paused = true)]
async fn a_refusal_hands_back_what_earlier_rules_took() {
    let limiter = limiter(
        RateLimitPolicy::builder()
            .requests_per_minute(100)
            .per_user_rpm(1),
    );
    let user: Arc<str> = "alice".into();
    let alice = Identity {
        user: Some(&user),
        tenant: None,
    };
    let deadline = Instant::now() + HOUR;
    let _admitted = limiter.admit(alice, None, deadline).await.unwrap();
    let err = limiter.admit(alice, None, deadline).await.unwrap_err();
    assert!(matches!(
        err.detail(),
        Some(ErrorDetail::RateLimited {
            scope: LimitScope::User,
            ..
        })
    ));
    // The endpoint limit was charged once, not twice.
    let snap = limiter.snapshot(anonymous()).unwrap();
    assert_eq!(snap.remaining, 99);
}

#[tokio::test(start_paused = true)]
async fn idle_users_are_evicted() {
    let limiter = limiter(RateLimitPolicy::builder().per_user_rpm(10));
    let deadline = Instant::now() + HOUR;
    let users: Vec<Arc<str>> = (0..100_000).map(|i| format!("user-{i}").into()).collect();
    for user in &users {
        let id = Identity {
            user: Some(user),
            tenant: None,
        };
        let _admitted = limiter.admit(id, None, deadline).await.unwrap();
    }
    assert_eq!(limiter.tracked_keys(), 100_000);
    // One request drains from a 10 rpm cell in 6 s; the sweep runs once a minute.
    tokio::time::advance(Duration::from_secs(61)).await;
    let newcomer: Arc<str> = "newcomer".into();
    let id = Identity {
        user: Some(&newcomer),
        tenant: None,
    };
    let _admitted = limiter.admit(id, None, deadline).await.unwrap();
    assert_eq!(limiter.tracked_keys(), 1);
}

#[test]
fn zero_limits_are_refused() {
    let err = RateLimitPolicy::builder()
        .per_user_rpm(0)
        .build()
        .unwrap_err();
    assert!(err.to_string().contains("per_user_rpm"), "{err}");
    let err = "drop".parse::<OnLimit>().unwrap_err();
    assert!(err.to_string().contains("reject, delay, queue"), "{err}");
}
