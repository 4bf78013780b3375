"""station roster import | list | lookup"""
from __future__ import annotations

import sys
from dataclasses import asdict
from pathlib import Path

from station import roster
from station.commands.output import print_json, table
from station.context import Station
from station.errors import EXIT_FAILED, EXIT_USAGE

GENDER_ZH = {"M": "男", "F": "女"}


def import_(args) -> int:
    station = Station.open(args.data_dir)
    result = roster.import_file(station.db, Path(args.file), station.operator(),
                                station.config["roster.grades"], skip_bad=args.skip_bad)
    imported, zh, en = roster.outcome(result, args.skip_bad)
    failed = not imported
    if args.json:
        doc = asdict(result)
        doc["imported"] = imported
        print_json(doc)
    else:
        for error in result.errors:
            print(error, file=sys.stderr)
        print(("\n" if failed else "") + f"{zh}\n{en}", file=sys.stderr if failed else sys.stdout)
    return EXIT_USAGE if failed else 0


def list_(args) -> int:
    station = Station.open(args.data_dir)
    rows = roster.students(station.db, args.grade)
    if args.json:
        print_json(rows)
        return 0
    table(f"学生名册 / roster: {len(rows)}",
          ["学籍号/考号 code", "姓名 name", "性别 gender", "年级 grade", "班级 class", "学校 school"],
          [(r["code"], r["name"], GENDER_ZH[r["gender"]], r["grade"], r["class"], r["school"])
           for r in rows])
    return 0


def lookup(args) -> int:
    station = Station.open(args.data_dir)
    student = roster.lookup(station.db, args.code)
    if args.json:
        print_json(student)
    elif student:
        print(f"{student['code']}  {student['name']}  {GENDER_ZH[student['gender']]}  "
              f"{student['grade']} 年级  {student['class']}  {student['school']}")
    else:
        print(f"名册中没有学籍号/考号 {args.code}。请核对条码，或先导入名册。\n"
              f"No student with code {args.code} in the roster.", file=sys.stderr)
    return 0 if student else EXIT_FAILED
