"""The S3 bucket that receives the trail's original log files (the audit record)."""

from __future__ import annotations

import json

import botocore.exceptions

from .. import attached_policies as policies
from .. import operator_policy as perms
from ..aws import error_code
from .base import Observed, Resource, absent_on, tags_from_list

PUBLIC_ACCESS_BLOCK = {
    "BlockPublicAcls": True,
    "IgnorePublicAcls": True,
    "BlockPublicPolicy": True,
    "RestrictPublicBuckets": True,
}


class TrailBucket(Resource):
    kind = "bucket"
    label = "S3 bucket"
    service = "s3"
    keeps_data = "holds the original CloudTrail log files (--delete-bucket removes it)"
    sid = "TrailBucket"

    def calls(self) -> list[perms.Grant | None]:
        objects = perms.Route("TeardownTrailBucketObjects", (f"{self.arn}/*",))
        return [
            self.grant(
                "Read",
                perms.READ,
                "GetBucketTagging",
                "ListObjectsV2",  # only for a bucket left untagged by an interrupted run
                "GetBucketPolicy",
                "GetPublicAccessBlock",
                "GetBucketEncryption",
            ),
            self.grant(
                "Setup",
                perms.ON_SETUP,
                "CreateBucket",
                "PutBucketTagging",
                "PutPublicAccessBlock",
                "PutBucketEncryption",
                "PutBucketPolicy",
            ),
            self.grant(
                "Teardown",
                perms.ON_TEARDOWN,
                "DeleteBucketPolicy",
                "ListObjectVersions",
                "DeleteObjects",
                "DeleteBucket",
                routes={"s3:DeleteObject": objects, "s3:DeleteObjectVersion": objects},
            ),
        ]

    def _org_id(self) -> str | None:
        """Organization mode: the trail also writes under AWSLogs/<org id>/."""
        org = self.d.organization
        return org.id if org is not None and self.d.config.organization.enabled else None

    @property
    def name(self) -> str:
        return self.names.bucket

    @property
    def arn(self) -> str:
        return self.names.bucket_arn

    @property
    def explicit(self) -> bool:
        """The user named this bucket in the config: we may use it even if we did not make it."""
        return self.names.bucket_override is not None

    @absent_on("NoSuchBucket", "404", "NotFound")
    def read(self) -> Observed | None:
        c = self.client
        # Bucket names are global: ExpectedBucketOwner makes a same-named bucket in
        # another account fail (403) instead of being mistaken for ours.
        observed: Observed = {"tags": self._tags()}
        if not observed["tags"]:
            # Only needed to recognise a bucket left untagged by an interrupted run.
            listing = c.list_objects_v2(Bucket=self.name, MaxKeys=1)
            observed["empty"] = listing.get("KeyCount", 0) == 0
        try:
            observed["policy"] = json.loads(c.get_bucket_policy(Bucket=self.name)["Policy"])
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "NoSuchBucketPolicy":
                raise
            observed["policy"] = None
        try:
            pab = c.get_public_access_block(Bucket=self.name)["PublicAccessBlockConfiguration"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "NoSuchPublicAccessBlockConfiguration":
                raise
            pab = {}
        observed["public_access_block"] = pab
        try:
            rules = c.get_bucket_encryption(Bucket=self.name)["ServerSideEncryptionConfiguration"]
            default = rules["Rules"][0]["ApplyServerSideEncryptionByDefault"]
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) != "ServerSideEncryptionConfigurationNotFoundError":
                raise
            default = {}
        observed["encryption"] = default
        return observed

    def _tags(self) -> dict[str, str]:
        try:
            tagging = self.client.get_bucket_tagging(
                Bucket=self.name, ExpectedBucketOwner=self.names.account
            )
            return tags_from_list(tagging["TagSet"])
        except botocore.exceptions.ClientError as exc:
            if error_code(exc) == "NoSuchTagSet":
                return {}
            raise

    def adoptable(self, observed: Observed) -> bool:
        """May setup take this bucket over although it lacks our tags?

        Yes when the user named it in the config, or when it is what an interrupted
        run leaves behind (S3 cannot tag at creation): our exact derived name, which
        embeds the account id and region, empty, with no policy and no tags.
        """
        return self.explicit or self._interrupted_leftover(observed)

    def _interrupted_leftover(self, observed: Observed) -> bool:
        return (
            self.names.bucket_override is None
            and not observed.get("tags")
            and observed.get("policy") is None
            and bool(observed.get("empty"))
        )

    # ------------------------------------------------------------ desired state
    def _desired_encryption(self) -> dict[str, str]:
        key = self.d.config.kms.bucket
        if key:
            return {"SSEAlgorithm": "aws:kms", "KMSMasterKeyID": key}
        return {"SSEAlgorithm": "AES256"}

    def diff(self, observed: Observed) -> list[str]:
        changes: list[str] = []
        current = policies.normalize(observed.get("policy"))
        wanted = policies.normalize(
            policies.merge_bucket_policy(observed.get("policy"), self.names, self._org_id())
        )
        if current != wanted:
            changes.append("bucket policy: CloudTrail write access and TLS-only access")
        if self._interrupted_leftover(observed):
            changes.append("tags: managed-by=loginwatch (left untagged by an interrupted run)")
        elif not self.owned(observed):
            return changes  # a user's bucket: we only merge our policy statements
        if observed.get("public_access_block") != PUBLIC_ACCESS_BLOCK:
            changes.append("public access block: not all four settings on")
        enc = observed.get("encryption") or {}
        want = self._desired_encryption()
        if enc.get("SSEAlgorithm") != want["SSEAlgorithm"] or (
            "KMSMasterKeyID" in want and enc.get("KMSMasterKeyID") != want["KMSMasterKeyID"]
        ):
            changes.append(
                f"default encryption: {enc.get('SSEAlgorithm', 'none')} → {want['SSEAlgorithm']}"
            )
        return changes

    # ------------------------------------------------------------ mutations
    def create(self) -> None:
        with self.aws_call():
            params: dict = {"Bucket": self.name, "ObjectOwnership": "BucketOwnerEnforced"}
            if self.aws.region != "us-east-1":  # us-east-1 rejects an explicit location
                params["CreateBucketConfiguration"] = {"LocationConstraint": self.aws.region}
            try:
                self.client.create_bucket(**params)
            except botocore.exceptions.ClientError as exc:
                # Created by an earlier, interrupted run: carry on configuring it.
                if error_code(exc) != "BucketAlreadyOwnedByYou":
                    raise
        self._tag()
        self._secure()
        self._put_policy(None)

    def update(self, observed: Observed, changes: list[str]) -> None:
        if self._interrupted_leftover(observed):
            self._tag()
        if self.owned(observed) or self._interrupted_leftover(observed):
            self._secure()
        self._put_policy(observed.get("policy"))

    def _tag(self) -> None:
        with self.aws_call():
            self.client.put_bucket_tagging(Bucket=self.name, Tagging={"TagSet": self.d.tag_list()})

    def _secure(self) -> None:
        with self.aws_call():
            self.client.put_public_access_block(
                Bucket=self.name, PublicAccessBlockConfiguration=PUBLIC_ACCESS_BLOCK
            )
        with self.aws_call():
            rule: dict = {"ApplyServerSideEncryptionByDefault": self._desired_encryption()}
            if self.d.config.kms.bucket:
                rule["BucketKeyEnabled"] = True  # fewer KMS requests, lower cost
            self.client.put_bucket_encryption(
                Bucket=self.name, ServerSideEncryptionConfiguration={"Rules": [rule]}
            )

    def _put_policy(self, existing: dict | None) -> None:
        policy = policies.merge_bucket_policy(existing, self.names, self._org_id())
        with self.aws_call():
            self.client.put_bucket_policy(Bucket=self.name, Policy=json.dumps(policy))

    def cleanable(self, observed: Observed) -> bool:
        return policies.has_our_statements(observed.get("policy"))

    def clean(self, observed: Observed) -> str:
        """A user's bucket is kept; only the statements setup merged into its policy go."""
        remaining = policies.without_our_statements(observed.get("policy") or {})
        if remaining["Statement"]:
            with self.aws_call():
                self.client.put_bucket_policy(Bucket=self.name, Policy=json.dumps(remaining))
        else:
            with self.aws_call():
                self.client.delete_bucket_policy(Bucket=self.name)
        return "loginwatch's policy statements removed; the bucket and its objects are kept"

    def delete(self, observed: Observed) -> str:
        """Only with --delete-bucket: empty every object version, then delete the bucket."""
        c = self.client
        # The TLS-only statement is removed first: the bucket is going away, and some
        # S3-compatible endpoints (moto over http) apply the Deny without its condition.
        with self.aws_call():
            c.delete_bucket_policy(Bucket=self.name)
        removed = 0
        with self.aws_call():
            paginator = c.get_paginator("list_object_versions")
            for page in paginator.paginate(Bucket=self.name):
                batch = [
                    {"Key": v["Key"], "VersionId": v["VersionId"]}
                    for v in page.get("Versions", []) + page.get("DeleteMarkers", [])
                ]
                for start in range(0, len(batch), 1000):
                    chunk = batch[start : start + 1000]
                    c.delete_objects(Bucket=self.name, Delete={"Objects": chunk, "Quiet": True})
                    removed += len(chunk)
        with self.aws_call():
            c.delete_bucket(Bucket=self.name)
        return f"{removed} object version(s) and delete marker(s) removed"
