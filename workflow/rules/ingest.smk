# Ingestion: one job per dataset, then one merged manifest with a summary.


rule ingest:
    input:
        unpack(ingest_inputs),
    output:
        manifest=f"{RESULTS}/manifest/{{dataset}}.{MANIFEST_EXT}",
        rejects="results/manifest/{dataset}.rejected.csv",
    log:
        "results/logs/ingest/{dataset}.log",
    benchmark:
        "results/benchmarks/ingest/{dataset}.tsv"
    conda:
        ENV
    params:
        entry=dataset_entry,
        seed=SEED,
        split=config["split"],
        strict=config["strict"],
    script:
        "../scripts/ingest.py"


rule merge_manifests:
    input:
        manifests=[manifest_path(n) for n in datasets()],
        rejects=[f"{RESULTS}/manifest/{n}.rejected.csv" for n in datasets()],
    output:
        merged=f"{RESULTS}/manifest/all.{MANIFEST_EXT}",
        summary="results/manifest/summary.json",
    log:
        "results/logs/merge_manifests.log",
    conda:
        ENV
    params:
        names=datasets(),
    script:
        "../scripts/merge_manifests.py"
