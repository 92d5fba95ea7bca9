# Centromere localisation (regression): one training job per model on the train splits
# of the configured preprocessed datasets (rows with a known centromere), MLflow-tracked;
# evaluation on their test splits. docs/centromere.md


wildcard_constraints:
    cmodel="centromere_[a-z_]+",


rule train_centromere:
    input:
        train=centromere_files("train"),
        val=centromere_files("val"),
    output:
        model=f"{RESULTS}/centromere/{{cmodel}}/model.keras",
        metrics=f"{RESULTS}/centromere/{{cmodel}}/metrics.json",
        history=f"{RESULTS}/centromere/{{cmodel}}/history.json",
        curves=f"{RESULTS}/centromere/{{cmodel}}/curves.png",
    log:
        f"{RESULTS}/logs/train_centromere/{{cmodel}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/train_centromere/{{cmodel}}.tsv"
    conda:
        ENV_GPU if GPU["enabled"] else ENV
    threads: TRAIN_THREADS
    resources:
        **GPU_RESOURCES,
    params:
        job=centromere_job,
    script:
        "../scripts/train_centromere.py"


rule evaluate_centromere:
    input:
        model=f"{RESULTS}/centromere/{{cmodel}}/model.keras",
        test=centromere_files("test"),
    output:
        metrics=f"{RESULTS}/centromere/{{cmodel}}/test/metrics.json",
        per_class=f"{RESULTS}/centromere/{{cmodel}}/test/per_class.csv",
        predictions=f"{RESULTS}/centromere/{{cmodel}}/test/predictions.csv",
        figure=report(
            f"{RESULTS}/centromere/{{cmodel}}/test/predictions.png",
            caption="../report/centromere.rst",
            category="Centromere",
            labels={"model": "{cmodel}", "figure": "test predictions"},
        ),
    log:
        f"{RESULTS}/logs/evaluate_centromere/{{cmodel}}.log",
    benchmark:
        f"{RESULTS}/benchmarks/evaluate_centromere/{{cmodel}}.tsv"
    conda:
        ENV
    threads: TRAIN_THREADS
    params:
        job=centromere_job,
    script:
        "../scripts/evaluate_centromere.py"
