-- A certificate is its issuer and serial number: another encoding of an enrolled certificate,
-- or its ECDSA twin, has another fingerprint but the same identity. Every certificate an
-- agent holds or held keeps it (hex SHA-256 over the issuer name's DER and the serial), so
-- verify judges such a certificate as that agent's and enrolment refuses it. Rows written
-- before this are filled in when certgate starts.
ALTER TABLE agents ADD COLUMN issuer_serial TEXT;
ALTER TABLE superseded_certificates ADD COLUMN issuer_serial TEXT;
CREATE INDEX agents_issuer_serial ON agents (issuer_serial);
CREATE INDEX superseded_certificates_issuer_serial ON superseded_certificates (issuer_serial);
