# Preprocessing: manifest -> crop, grey/polarity, denoise, CLAHE, mask, straighten,
# orient, resize, augment -> one HDF5 per (size, split), sharded by source image.


rule preprocess_shard:
    input:
        manifest=manifest_path("{dataset}"),
    output:
        temp("results/preprocess/{dataset}/shards/{shard}.h5"),
    log:
        "results/logs/preprocess_shard/{dataset}/{shard}.log",
    benchmark:
        "results/benchmarks/preprocess_shard/{dataset}/{shard}.tsv"
    conda:
        ENV
    threads: 1
    params:
        steps=config["preprocess"]["params"],
        seed=SEED,
        n_shards=N_SHARDS,
    script:
        "../scripts/preprocess_shard.py"


rule preprocess_merge:
    input:
        shards=expand(
            "results/preprocess/{{dataset}}/shards/{shard}.h5",
            shard=range(N_SHARDS),
        ),
    output:
        datasets=expand(
            "results/preprocess/{{dataset}}/{size}/{split}.h5",
            size=SIZES,
            split=SPLITS,
        ),
        rejects="results/preprocess/{dataset}/rejected.csv",
        summary="results/preprocess/{dataset}/summary.json",
    log:
        "results/logs/preprocess_merge/{dataset}.log",
    benchmark:
        "results/benchmarks/preprocess_merge/{dataset}.tsv"
    conda:
        ENV
    params:
        out_dir=lambda wildcards: f"{RESULTS}/preprocess/{wildcards.dataset}",
        steps=config["preprocess"]["params"],
        seed=SEED,
    script:
        "../scripts/preprocess_merge.py"


rule preprocess_qc:
    input:
        manifest=manifest_path("{dataset}"),
    output:
        report(
            "results/preprocess/{dataset}/qc.png",
            caption="../report/preprocess_qc.rst",
            category="Preprocessing",
            subcategory="{dataset}",
        ),
    log:
        "results/logs/preprocess_qc/{dataset}.log",
    benchmark:
        "results/benchmarks/preprocess_qc/{dataset}.tsv"
    conda:
        ENV
    params:
        steps=config["preprocess"]["params"],
        per_class=config["preprocess"]["qc_per_class"],
        seed=SEED,
    script:
        "../scripts/preprocess_qc.py"
