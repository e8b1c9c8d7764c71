"""Table tests of the entity extractors (dates and times: test_when.py)."""

from decimal import Decimal

import pytest
from dialtone.language.entities import (
    Amount,
    extract_alphanumeric,
    extract_amount,
    extract_choice,
    extract_digits,
    extract_number,
    extract_ordinal,
    extract_phone_number,
    extract_yes_no,
)

YES_NO = [
    ("yes", True), ("Yes.", True), ("yeah", True), ("yep", True), ("yup", True), ("sure", True),
    ("sure thing", True), ("correct", True), ("that's correct", True), ("that's right", True),
    ("thats right", True), ("yeah that's right", True), ("Yeah, that's right.", True), ("right", True),
    ("exactly", True), ("absolutely", True), ("of course", True), ("ok", True), ("okay", True),
    ("alright", True), ("go ahead", True), ("uh huh", True), ("mhm", True), ("yes please", True),
    ("sounds good", True), ("you bet", True), ("no problem", True), ("i think so", True),
    ("yes it is", True), ("no wait yes", True),
    ("no", False), ("No.", False), ("nope", False), ("nah", False), ("no thanks", False),
    ("no thank you", False), ("not really", False), ("negative", False), ("incorrect", False),
    ("that's wrong", False), ("that's not right", False), ("thats not right", False), ("not correct", False),
    ("absolutely not", False), ("i don't think so", False), ("no it isn't", False), ("yeah no", False),
    ("no that's wrong", False), ("definitely not", False), ("uh uh", False),
    ("i'm not sure", None), ("maybe", None), ("i don't know", None), ("hello", None), ("", None),
    ("what", None), ("the second one", None),
]


@pytest.mark.parametrize(("text", "expected"), YES_NO)
def test_yes_no(text, expected):
    assert extract_yes_no(text) is expected


@pytest.mark.parametrize(("dtmf", "expected"), [("1", True), ("2", False), ("1#", True), ("3", None), ("*", None)])
def test_yes_no_by_dtmf(dtmf, expected):
    assert extract_yes_no("", dtmf=dtmf) is expected


def test_yes_no_keys_are_configurable():
    assert extract_yes_no("", dtmf="9", dtmf_yes="9", dtmf_no="6") is True
    assert extract_yes_no("", dtmf="1", dtmf_yes="9", dtmf_no="6") is None


DIGITS = [
    ("8392", "8392"), ("eight three nine two", "8392"), ("4 5 6 7", "4567"), ("four five six seven", "4567"),
    ("Four, five, six, seven.", "4567"), ("oh four one two", "0412"), ("zero four one two", "0412"),
    ("o four one two", "0412"), ("0412", "0412"), ("double five", "55"), ("double five one two", "5512"),
    ("triple seven", "777"), ("triple seven one", "7771"), ("one double oh seven", "1007"),
    ("double 5 3 4", "5534"), ("5 5 5 dash 1 2 1 2", "5551212"), ("555-1212", "5551212"),
    ("my account number is 1 2 3 4 5 6", "123456"), ("it's 1234 thanks", "1234"),
    ("oh I think it's 1234", "1234"), ("um 1 2 uh 3 4", "1234"), ("nineteen eighty four", "1984"),
    ("twenty one twenty two", "2122"), ("one two three four five six seven eight", "12345678"),
    ("five five five one two one two", "5551212"), ("zero zero seven", "007"), ("oh oh seven", "007"),
    ("1 2 3 4", "1234"), ("12 34", "1234"), ("one hundred", "100"), ("four thousand five hundred sixty seven", "4567"),
    ("the code is 9 9 8 7", "9987"), ("my zip is 0 2 1 3 9", "02139"), ("six oh two", "602"),
    ("seven eight nine", "789"), ("it is two four six eight", "2468"), ("three", "3"), ("zero", "0"),
    ("my pin is one one one one", "1111"), ("eight hundred five five five", "800555"),
    ("hello", None), ("", None), ("oh", None), ("oh no", None), ("i don't have it", None),
]


@pytest.mark.parametrize(("text", "expected"), DIGITS)
def test_digits(text, expected):
    assert extract_digits(text) == expected


@pytest.mark.parametrize(("text", "constraints", "expected"), [
    ("1 2 3", {"min_length": 4}, None),
    ("1 2 3 4", {"min_length": 4, "max_length": 4}, "1234"),
    ("1 2 3 4 5", {"max_length": 4}, None),
    ("i have 2 accounts the number is 5 4 3 2 1", {"min_length": 5}, "54321"),
    ("i have 2 accounts", {"min_length": 4}, None),
])
def test_digits_with_lengths(text, constraints, expected):
    assert extract_digits(text, **constraints) == expected


@pytest.mark.parametrize(("dtmf", "expected"), [("0412#", "0412"), ("0412", "0412"), ("12*4", None), ("#", None)])
def test_digits_by_dtmf(dtmf, expected):
    assert extract_digits("", dtmf=dtmf) == expected


NUMBERS = [
    ("205", 205), ("two hundred and five", 205), ("two hundred five", 205), ("Two hundred and five.", 205),
    ("twenty five", 25), ("twenty-five", 25), ("a hundred", 100), ("a hundred and twenty", 120),
    ("one hundred twenty", 120), ("one thousand", 1000), ("a thousand", 1000), ("1,500", 1500),
    ("fifteen hundred", 1500), ("two thousand and five", 2005), ("1000000", 1000000), ("a million", 1000000),
    ("one", 1), ("zero", 0), ("none", 0), ("nothing", 0), ("three", 3), ("I'd like 3 please", 3),
    ("i want three of them", 3), ("about twenty", 20), ("maybe forty two", 42), ("ninety nine", 99),
    ("a dozen", 12), ("half a dozen", 6), ("a couple", 2), ("3.5", 3.5), ("three point five", 3.5),
    ("minus four", -4), ("negative ten", -10), ("eleven", 11), ("nineteen", 19), ("seventy", 70),
    ("four five six seven", 4), ("i'm 42 years old", 42), ("$50", 50), ("number 7", 7),
    ("hello", None), ("", None), ("the third", None), ("yes", None), ("9" * 400, None),
]


@pytest.mark.parametrize(("text", "expected"), NUMBERS)
def test_number(text, expected):
    value = extract_number(text)
    assert value == expected and type(value) is type(expected)


def test_number_range():
    assert extract_number("twelve", min=1, max=10) is None
    assert extract_number("seven", min=1, max=10) == 7


@pytest.mark.parametrize(("text", "expected"), [
    ("the third", 3), ("first", 1), ("the second", 2), ("twenty first", 21), ("2nd", 2), ("the 10th", 10),
    ("fourth one", 4), ("hello", None), ("three", None),
])
def test_ordinal(text, expected):
    assert extract_ordinal(text) == expected


SIZES = {"small": ["little", "regular"], "medium": [], "large": ["big", "extra large"]}


@pytest.mark.parametrize(("text", "expected"), [
    ("large", "large"), ("the large one please", "large"), ("big", "large"), ("extra large", "large"),
    ("a little one", "small"), ("medium", "medium"), ("the second one", "medium"), ("the first one", "small"),
    ("number 3", "large"), ("option two", "medium"), ("um 2", "medium"), ("three", "large"),
    ("the last one", "large"), ("not the large, the medium", "medium"), ("I'd like a larg", "large"),
    ("meedium", "medium"), ("the fifth one", None), ("lodge", None), ("hello", None), ("", None),
])
def test_choice(text, expected):
    assert extract_choice(text, options=SIZES) == expected


def test_choice_of_plain_names_and_dtmf():
    options = ["pickup", "delivery"]
    assert extract_choice("for delivery please", options=options) == "delivery"
    assert extract_choice("I'll pick it up", options={"pickup": ["pick it up", "pick up"], "delivery": []}) == "pickup"
    assert extract_choice("", options=options, dtmf="1") == "pickup"
    assert extract_choice("", options=options, dtmf="3") is None


def test_choice_longest_phrase_wins():
    options = ["pepperoni", "pepperoni and mushroom"]
    assert extract_choice("a large pepperoni and mushroom", options=options) == "pepperoni and mushroom"


@pytest.mark.parametrize(("text", "expected"), [
    ("twelve dollars and fifty cents", Amount(Decimal("12.50"), "USD")),
    ("$12.50", Amount(Decimal("12.50"), "USD")),
    ("12 dollars 50", Amount(Decimal("12.50"), "USD")),
    ("twelve fifty", Amount(Decimal("12.50"), "USD")),
    ("a hundred bucks", Amount(Decimal("100"), "USD")),
    ("fifty cents", Amount(Decimal("0.50"), "USD")),
    ("5 euros", Amount(Decimal("5"), "EUR")),
    ("€1.234,56", Amount(Decimal("1234.56"), "EUR")),
    ("EUR 15", Amount(Decimal("15"), "EUR")),
    ("twenty pounds", Amount(Decimal("20"), "GBP")),
    ("I paid $1,234.56 yesterday", Amount(Decimal("1234.56"), "USD")),
    ("one hundred and twenty dollars", Amount(Decimal("120"), "USD")),
    ("100", Amount(Decimal("100"), "USD")),
    ("$" + "9" * 30, None),
    ("€" + "9" * 40 + ",50", None),
    ("hello", None),
])
def test_amount(text, expected):
    assert extract_amount(text) == expected


def test_amount_currency_and_range():
    assert extract_amount("fifty", currency="EUR") == Amount(Decimal("50"), "EUR")
    assert extract_amount("ten dollars", currency="CAD") == Amount(Decimal("10"), "CAD")
    assert extract_amount("500 dollars", max=100) is None


@pytest.mark.parametrize(("text", "region", "expected"), [
    ("six five oh two five three oh oh oh oh", "US", "+16502530000"),
    ("650-253-0000", "US", "+16502530000"),
    ("my number is 212 555 0123", "US", "+12125550123"),
    ("plus four four two oh seven nine four six oh oh one eight", "US", "+442079460018"),
    ("oh two oh seven nine four six oh oh one eight", "GB", "+442079460018"),
    ("555 1234", "US", None),
    ("hello", "US", None),
])
def test_phone_number(text, region, expected):
    assert extract_phone_number(text, region=region) == expected


@pytest.mark.parametrize(("text", "expected"), [
    ("b as in boy seven alpha", "B7A"), ("alpha bravo charlie one two three", "ABC123"), ("A B C 1 2 3", "ABC123"),
    ("my code is a b 1 2", "AB12"), ("x ray nine zulu", "X9Z"), ("ab12cd", "AB12CD"), ("double e 4", "EE4"),
    ("see as in cat dee for dog", "CD"), ("r x 4 4 1 9", "RX4419"), ("kilo lima mike", "KLM"),
    ("", None), ("hello there", None),
])
def test_alphanumeric(text, expected):
    assert extract_alphanumeric(text) == expected


def test_alphanumeric_lengths():
    assert extract_alphanumeric("a b", min_length=3) is None
    assert extract_alphanumeric("a b c d", max_length=3) is None
