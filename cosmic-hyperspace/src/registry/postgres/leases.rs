//! The leases of a cosmos's machines (see `membership`), in the `leases` table: one row per
//! machine, times by the database's clock so that machines' clocks need not agree.
//!
//! Every statement is one conditional `UPDATE` or upsert, so two machines racing for the same
//! lease (a burial against a renewal) are decided by the row lock: exactly one wins. Burials
//! and releases are not run again after a broken connection — the first attempt may have
//! happened. Known hole (the simulation's `a_burial_nobody_hears_of_still_gets_adopted`): a
//! burial whose answer is lost is not asked again, so its particles wait for the next
//! `reawaken` anywhere. And `acquire` takes a name's lease even while another process holds
//! it (`two_processes_with_one_name_never_serve_at_once`): machine names must be unique.

use std::time::Duration;

use async_trait::async_trait;

use super::PgRegistry;
use super::failure::Failure;
use crate::membership::{Lease, Leases};
use crate::registry::RegistryError;

/// Milliseconds, as PostgreSQL's `double precision` for `interval` arithmetic.
fn ms(duration: Duration) -> f64 {
    duration.as_secs_f64() * 1000.0
}

impl PgRegistry {
    /// Runs one statement that changes leases, once; the number of rows it changed.
    async fn lease_update(
        &self,
        doing: &str,
        sql: &str,
        params: &[&(dyn tokio_postgres::types::ToSql + Sync)],
    ) -> Result<u64, RegistryError> {
        let outcome: Result<u64, Failure> = async {
            let client = self.pool.get().await?;
            Ok(client.execute(sql, params).await?)
        }
        .await;
        outcome.map_err(|failure| failure.into_error(doing))
    }
}

#[async_trait]
impl Leases for PgRegistry {
    async fn acquire(
        &self,
        machine: &str,
        stars: u16,
        ttl: Duration,
    ) -> Result<u64, RegistryError> {
        let doing = format!("taking the lease of machine {machine}");
        let outcome: Result<i64, Failure> = async {
            let client = self.pool.get().await?;
            let row = client
                .query_one(
                    "INSERT INTO leases (machine, epoch, stars, expires_at, buried) \
                     VALUES ($1, 1, $2, now() + $3 * interval '1 millisecond', false) \
                     ON CONFLICT (machine) DO UPDATE SET epoch = leases.epoch + 1, \
                     stars = EXCLUDED.stars, expires_at = EXCLUDED.expires_at, buried = false \
                     RETURNING epoch",
                    &[&machine, &i32::from(stars), &ms(ttl)],
                )
                .await?;
            Ok(row.try_get(0)?)
        }
        .await;
        let epoch = outcome.map_err(|failure| failure.into_error(&doing))?;
        u64::try_from(epoch).map_err(|_| RegistryError::Storage(format!("{doing}: epoch {epoch}")))
    }

    async fn renew(&self, machine: &str, epoch: u64, ttl: Duration) -> Result<bool, RegistryError> {
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        let changed = self
            .lease_update(
                &format!("renewing the lease of machine {machine}"),
                "UPDATE leases SET expires_at = now() + $3 * interval '1 millisecond' \
                 WHERE machine = $1 AND epoch = $2 AND NOT buried AND expires_at > now()",
                &[&machine, &epoch, &ms(ttl)],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn leases(&self) -> Result<Vec<Lease>, RegistryError> {
        let outcome: Result<Vec<Lease>, Failure> = async {
            let client = self.pool.get().await?;
            let rows = client
                .query(
                    "SELECT machine, epoch, stars, \
                     (EXTRACT(EPOCH FROM (expires_at - now())) * 1000)::float8, buried \
                     FROM leases ORDER BY machine",
                    &[],
                )
                .await?;
            let mut leases = Vec::with_capacity(rows.len());
            for row in rows {
                let remaining: f64 = row.try_get(3)?;
                let epoch: i64 = row.try_get(1)?;
                let stars: i32 = row.try_get(2)?;
                leases.push(Lease {
                    machine: row.try_get(0)?,
                    epoch: u64::try_from(epoch).unwrap_or_default(),
                    stars: u16::try_from(stars).unwrap_or_default(),
                    remaining: (remaining > 0.0)
                        .then(|| Duration::from_secs_f64(remaining / 1000.0)),
                    buried: row.try_get(4)?,
                });
            }
            Ok(leases)
        }
        .await;
        outcome.map_err(|failure| failure.into_error("reading the machines' leases"))
    }

    async fn bury(&self, machine: &str, epoch: u64) -> Result<bool, RegistryError> {
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        let changed = self
            .lease_update(
                &format!("declaring machine {machine} dead"),
                "UPDATE leases SET buried = true \
                 WHERE machine = $1 AND epoch = $2 AND NOT buried AND expires_at <= now()",
                &[&machine, &epoch],
            )
            .await?;
        Ok(changed == 1)
    }

    async fn release(&self, machine: &str, epoch: u64) -> Result<(), RegistryError> {
        let epoch = i64::try_from(epoch).unwrap_or(i64::MAX);
        self.lease_update(
            &format!("giving up the lease of machine {machine}"),
            "UPDATE leases SET expires_at = now() WHERE machine = $1 AND epoch = $2",
            &[&machine, &epoch],
        )
        .await?;
        Ok(())
    }
}
